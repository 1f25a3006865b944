// The SMTP sink (harness/smtp-sink.ts) as a program where the Python interop
// tests run it, dist/test/helpers/smtp-sink.js (compat/test_*.py name that path).

import { smtpSinkMain } from "../../harness/smtp-sink";

smtpSinkMain(process.argv.slice(2));
