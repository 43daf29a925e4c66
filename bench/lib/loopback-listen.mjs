// Preloaded into a peer gateway (`node --import`) that offers no host setting: every server it starts
// listens on 127.0.0.1 only, and the port it got is reported to the benchmark over IPC (the peer is started
// with --port=0 and would print 0).
import net from 'node:net';

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function listenOnLoopback(...args) {
  if (typeof args[0] === 'number' || (typeof args[0] === 'string' && /^\d+$/.test(args[0]))) {
    // listen(port), listen(port, callback), listen(port, undefined, callback), listen(port, host, …)
    if (args.length === 1 || typeof args[1] === 'function') args.splice(1, 0, '127.0.0.1');
    else args[1] = '127.0.0.1';
  }
  this.once('listening', () => process.send?.({ port: this.address().port }));
  return listen.apply(this, args);
};
