// Package replica lets any replica of a tcpstated cluster accept any call.
// Its gRPC interceptors find the session a call names (the request's
// "name" or "parent" field, sessions/{id}/…) and then:
//
//   - serve it here when this replica holds the session;
//   - forward it, unchanged (metadata included), to the replica whose
//     lease the session's log is under, when that replica is live;
//   - take the session over by replaying its log (as a restart restores
//     one) when nobody live holds it, then serve it here.
//
// A forwarded call carries the forwardedKey metadata; a replica that gets
// a forwarded call for a session it does not hold takes it over or fails
// with UNAVAILABLE, never forwards it again, so a call makes at most one
// hop even while leases move.
//
// Calls that name no session (CreateSession, ListSessions, RunScript) are
// served by the replica that receives them: a session is created where
// its first call lands.
package replica
