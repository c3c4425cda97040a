// A newsletter sender: before each message, pdm's consent gate says whether this person may
// be sent a promotional email (consent for it, no opt-out of email, no restriction). Those
// who may not are skipped. The lines it prints name a recipient by its place in the list,
// never by an id or an address.
//
//   PDM_ENDPOINT_CONSENT=http://consent.pdm:50052 PDM_CERT_DIR=/etc/pdm/certs \
//   PDM_CLIENT_NAME=newsletter node dist/newsletter.js <subject id>...
//
// Exit status: 0 when every recipient was decided (sent or skipped), 1 on bad usage or
// configuration, 3 when the gate failed closed for someone (nobody was sent a message
// without a decision; run again later).

import { Channel, ConfigError, ConsentClient, ConsentGate, MessageKind } from "@pdm/client";

/** Where a real sender hands the message to its mail system. */
async function send(_subjectId: string): Promise<void> {
  // The address comes from the identity service, the body from the campaign: out of scope.
}

async function main(recipients: string[]): Promise<number> {
  if (recipients.length === 0) {
    console.error("usage: newsletter <subject id>...");
    return 1;
  }
  let consent: ConsentClient;
  try {
    consent = ConsentClient.fromEnv();
  } catch (error) {
    if (error instanceof ConfigError) {
      for (const problem of error.problems) console.error(`newsletter: ${problem}`);
      return 1;
    }
    throw error;
  }
  const gate = new ConsentGate(consent);
  let sent = 0;
  let skipped = 0;
  let undecided = 0;
  try {
    for (const [i, subjectId] of recipients.entries()) {
      const place = `recipient ${i + 1} of ${recipients.length}`;
      const verdict = await gate.canContact(subjectId, Channel.EMAIL, MessageKind.PROMOTIONAL);
      if (verdict.allowed) {
        await send(subjectId);
        sent++;
        console.log(`newsletter: ${place}: sent`);
      } else if (verdict.decision !== null) {
        skipped++;
        console.log(`newsletter: ${place}: skipped (${verdict.decision.reason})`);
      } else {
        undecided++;
        console.log(`newsletter: ${place}: skipped, no decision (${verdict.why})`);
      }
    }
  } finally {
    await gate.close();
    consent.close();
  }
  console.log(`newsletter: ${sent} sent, ${skipped} skipped, ${undecided} undecided`);
  return undecided > 0 ? 3 : 0;
}

process.exitCode = await main(process.argv.slice(2));
