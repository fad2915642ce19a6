// stack.js: YOUR TCP stack, behind the DUT agent (agent.js).
//
// tcpstated runs a packetdrill script by playing the remote peer: it sends
// the script's inbound packets to your stack and makes the script's socket
// calls on it, and it judges the packets your stack sends back. agent.js
// does the gRPC; this file is where you wire each call to your stack.
//
// Every socket call below answers UNIMPLEMENTED until you replace its
// body: the script fails at that line with "Unimplemented: ...", and the
// run goes on to the next script. Wire them in the order scripts need
// them: socket, bind, listen, accept (a server), connect (a client),
// then read, write, close, shutdown, getsockopt/setsockopt, fcntl, poll.
//
// The rules (see api/proto/tcpstate/dut/v1/dut.proto):
// - Return a result { ret, errno } as the Linux call would: a descriptor,
//   a count or 0; or ret -1 with errno as packetdrill names it
//   ("EAGAIN", "ECONNREFUSED", "EINPROGRESS", ...). An optional detail is
//   shown in the report; skip: "why" skips the script's line instead.
// - A call may be async (return a Promise): a blocking accept, connect or
//   read resolves when your stack is ready. tcpstated waits as long as the
//   script allows.
// - Numbers are Linux's: SOCK_STREAM 1, SOCK_NONBLOCK 0x800, AF_INET 2,
//   AF_INET6 10, SOL_SOCKET 1, SOL_TCP 6, O_NONBLOCK 0x800, POLLIN 1,
//   POLLOUT 4. Addresses are { ip: "192.168.0.1", port: 8080 }.
// - Packets are raw IP packets (IPv4 or IPv6 with TCP, no link header),
//   as Buffers: input(packet) gets the peer's, and you call
//   this.output(packet) for each one your stack sends.
"use strict";

const { unimplemented } = require("./unimplemented");

class Stack {
  // output(packet) sends one IP packet (a Buffer) to tcpstated; agent.js
  // sets it.
  constructor(output) {
    this.output = output;
  }

  // The name the report shows for your stack.
  name() {
    return "student stack (examples/dut-node starter: nothing wired yet)";
  }

  // Forget every socket and connection: the next script starts afresh.
  // req: { localAddress, remoteAddress, tolerance, options, script }:
  // your stack's address, the peer's, and the script's header options
  // ("mss" -> "1460") if you want them.
  reset(req) {}

  // One IP packet from the peer (a Buffer). Parse it and feed it to your
  // TCP; until then it is dropped.
  input(packet) {}

  // socket(domain, type, IPPROTO_TCP) -> { ret: fd }
  socket(req) { // { type, domain }
    throw unimplemented("socket");
  }

  // bind(fd, address) -> { ret: 0 }
  bind(req) { // { fd, address: { ip, port } }
    throw unimplemented("bind");
  }

  // listen(fd, backlog) -> { ret: 0 }; binds to address if not bound.
  listen(req) { // { fd, backlog, address }
    throw unimplemented("listen");
  }

  // accept(fd) -> { ret: newFd }; waits (resolve later) on a blocking
  // socket, { ret: -1, errno: "EAGAIN" } on a non-blocking one.
  accept(req) { // { fd }
    throw unimplemented("accept");
  }

  // connect(fd, address) from local -> { ret: 0 } once established, or
  // { ret: -1, errno: "EINPROGRESS" } on a non-blocking socket.
  connect(req) { // { fd, address, local }
    throw unimplemented("connect");
  }

  // read/recv(fd, length, flags) -> { ret: bytes read } (only the count
  // is judged).
  read(req) { // { fd, length, flags, call }
    throw unimplemented("read");
  }

  // write/send(fd, length, flags) -> { ret: bytes written }: write
  // length bytes of your choosing.
  write(req) { // { fd, length, flags, call }
    throw unimplemented("write");
  }

  // shutdown(fd, how) -> { ret: 0 }; SHUT_RD 0, SHUT_WR 1, SHUT_RDWR 2.
  shutdown(req) { // { fd, how }
    throw unimplemented("shutdown");
  }

  // close(fd) -> { ret: 0 }
  close(req) { // { fd }
    throw unimplemented("close");
  }

  // fcntl(fd, cmd, arg) -> { ret }; F_GETFL 3, F_SETFL 4 with O_NONBLOCK.
  fcntl(req) { // { fd, cmd, arg }
    throw unimplemented("fcntl");
  }

  // setsockopt(fd, level, option, value) -> { ret: 0 }, or
  // { ret: 0, skip: "no SO_RCVBUF here" } for an option you do not have.
  setSockOpt(req) { // { fd, level, option: "TCP_NODELAY", value, linger }
    throw unimplemented("setSockOpt");
  }

  // getsockopt(fd, level, option) -> { result: { ret: 0 }, value } or,
  // for TCP_INFO, { result: { ret: 0 }, tcpInfo: { state: "TCP_ESTABLISHED" } }.
  getSockOpt(req) { // { fd, level, option: "SO_ERROR" }
    throw unimplemented("getSockOpt");
  }

  // poll(fds, timeout) -> { result: { ret: ready }, fds: [{ fd, events, revents }] }
  poll(req) { // { fds: [{ fd, events }], timeout }
    throw unimplemented("poll");
  }
}

module.exports = { Stack };
