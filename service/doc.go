// Package service turns the fsm engine into the tcpstate.v1 gRPC services:
// sessions (one engine, one replay log and one clock each), their
// endpoints, segments in and out, and the log.
//
// Data flows one way. A request is validated and becomes an Input (an
// inbound IP packet, an application call, a clock advance); under the
// session's lock the input is applied to the engine (machine.Machine.Apply, the
// same code a re-run uses); if the engine refuses it nothing changed and
// nothing is logged; otherwise the input record and its OutputDigest
// record are appended to the session's log, the outputs go to the caller,
// the outbound queue and watchers, and the lock is released. The call then
// waits until its records are durable (group commit across sessions) and
// replies. Restoring a session on start, VerifySession and VerifyLog
// re-run the log through the same path and compare every output.
//
// Handlers are thin: validate, call the session, convert errors with
// toStatus (errors.go), the one place that knows gRPC codes.
//
// The service keeps its logs in a store.Store it is given (New); it never
// knows which store that is (store/filestore on disk, store/memstore in
// tests; Open is the file-store shorthand in open.go). Beside it:
// service/machine (the engine, its records and views, re-runs),
// service/tenant (who makes a call) and service/logrecord (the record
// encoder).
package service
