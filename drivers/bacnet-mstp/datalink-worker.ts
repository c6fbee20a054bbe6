// The MS/TP data link thread (see datalink.ts): owns the serial port and the master node, and
// talks to the gateway's MstpLink by messages.
import { parentPort, workerData } from 'node:worker_threads';
import { asBuffer, openInlineDataLink, type DataLinkOptions, type FromThread, type MstpDataLink, type ToThread } from './datalink.js';

const o = workerData as DataLinkOptions;
const port = parentPort!;
const post = (m: FromThread) => port.postMessage(m);

let link: MstpDataLink | undefined;
let ending = false;
const end = async () => {
  if (ending) return;
  ending = true;
  await link?.close();
  post({ t: 'closed' });
  port.close();
};

try {
  link = await openInlineDataLink(o, {
    onData: (source, npdu, replyId) => post({ t: 'data', source, npdu, replyId }),
    onNoReply: (dest, why) => post({ t: 'no-reply', dest, why }),
    onSuccessor: (ns, sole) => post({ t: 'successor', ns, sole }),
    onLost: (reason) => {
      post({ t: 'lost', reason });
      void end();
    },
  });
  port.on('message', (m: ToThread) => {
    switch (m.t) {
      case 'send':
        return link!.send(m.id, m.dest, asBuffer(m.npdu), m.expectReply);
      case 'cancel':
        return link!.cancel(m.id);
      case 'reply':
        return link!.reply(m.id, asBuffer(m.npdu));
      case 'stats':
        return void link!.stats().then((stats) => post({ t: 'stats', req: m.req, stats }));
      case 'close':
        return void end();
    }
  });
  post({ t: 'open' });
} catch (err) {
  post({ t: 'open-failed', message: (err as Error).message });
  port.close();
}
