// A newsletter sender: before each message, pdm's consent gate says whether this person may
// be sent a promotional email (consent for it, no opt-out of email, no restriction). Those
// who may not are skipped. The lines it prints name a recipient by its place in the list,
// never by an id or an address.
//
//   PDM_ENDPOINT_CONSENT=http://consent.pdm:50052 PDM_CERT_DIR=/etc/pdm/certs \
//   PDM_CLIENT_NAME=newsletter node dist/newsletter.js <subject id>...
//
// The same output and exit status as the Rust and Python senders: a line per message
// ("message 2: skipped (opted_out)"), then "sent 1, skipped 1 (opted_out: 1)"; exit 0 when
// every message was decided (sent or skipped), 64 on bad usage or configuration, 75 when
// the gate failed closed for someone (nobody was sent a message without a decision; run
// again later). One newsletter per person: a repeated recipient is skipped.

import { Channel, ConfigError, ConsentClient, ConsentGate, MessageKind } from "@pdm/client";

/** EX_USAGE / EX_CONFIG-like: nothing was sent. */
const BAD_SETUP = 64;
/** EX_TEMPFAIL: some messages were held back. */
const HELD_BACK = 75;

/** Where a real sender hands the message to its mail system. */
async function send(_subjectId: string): Promise<void> {
  // The address comes from the identity service, the body from the campaign: out of scope.
}

async function main(recipients: string[]): Promise<number> {
  if (recipients.length === 0) {
    console.error("usage: newsletter <subject id>...");
    return BAD_SETUP;
  }
  let consent: ConsentClient;
  try {
    consent = ConsentClient.fromEnv();
  } catch (error) {
    if (error instanceof ConfigError) {
      for (const problem of error.problems) console.error(`newsletter: ${problem}`);
      return BAD_SETUP;
    }
    throw error;
  }
  const gate = new ConsentGate(consent);
  const seen = new Set<string>();
  const skipped = new Map<string, number>();
  const skip = (number: number, reason: string, line = `skipped (${reason})`): void => {
    skipped.set(reason, (skipped.get(reason) ?? 0) + 1);
    console.log(`message ${number}: ${line}`);
  };
  let sent = 0;
  try {
    for (const [i, subjectId] of recipients.entries()) {
      const number = i + 1;
      if (seen.has(subjectId)) {
        skip(number, "duplicate");
        continue;
      }
      seen.add(subjectId);
      const verdict = await gate.canContact(subjectId, Channel.EMAIL, MessageKind.PROMOTIONAL);
      if (verdict.allowed) {
        await send(subjectId);
        sent++;
        console.log(`message ${number}: sent`);
      } else if (verdict.decision !== null) {
        skip(number, String(verdict.decision.reason).toLowerCase());
      } else {
        skip(number, "failed_closed", `held back (${verdict.why})`);
      }
    }
  } finally {
    await gate.close();
    consent.close();
  }
  const total = [...skipped.values()].reduce((a, b) => a + b, 0);
  const reasons = [...skipped.entries()].sort(([a], [b]) => a.localeCompare(b));
  const detail = reasons.length ? ` (${reasons.map(([k, n]) => `${k}: ${n}`).join(", ")})` : "";
  console.log(`sent ${sent}, skipped ${total}${detail}`);
  return skipped.has("failed_closed") ? HELD_BACK : 0;
}

process.exitCode = await main(process.argv.slice(2));
