#!/usr/bin/python3
"""The three-way handshake against a running tcpstated, over gRPC, from Python.

    ./gen.sh && /usr/bin/python3 handshake.py [HOST:PORT]

HOST:PORT is the gRPC address (default: $TCPSTATED_GRPC or 127.0.0.1:50051).
The stubs are generated from api/proto by gen.sh into ./gen (or
$TCPSTATED_PY_GEN). The script creates a session with fixed ISNs, opens a
listener on 10.0.0.1:80, submits a peer's SYN and then its ACK of
tcpstated's SYN-ACK (each with a request_id, so a retry is safe), and
prints the states the endpoints go through.
"""
import os
import sys
import uuid

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("TCPSTATED_PY_GEN", os.path.join(here, "gen")))

import grpc  # noqa: E402
from tcpstate.v1 import endpoint_service_pb2 as eps  # noqa: E402
from tcpstate.v1 import endpoint_service_pb2_grpc as eps_grpc  # noqa: E402
from tcpstate.v1 import segment_pb2  # noqa: E402
from tcpstate.v1 import segment_service_pb2 as sgs  # noqa: E402
from tcpstate.v1 import segment_service_pb2_grpc as sgs_grpc  # noqa: E402
from tcpstate.v1 import session_pb2  # noqa: E402
from tcpstate.v1 import session_service_pb2 as ses  # noqa: E402
from tcpstate.v1 import session_service_pb2_grpc as ses_grpc  # noqa: E402


def main():
    address = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TCPSTATED_GRPC", "127.0.0.1:50051")
    ch = grpc.insecure_channel(address)
    sessions = ses_grpc.SessionServiceStub(ch)
    endpoints = eps_grpc.EndpointServiceStub(ch)
    segments = sgs_grpc.SegmentServiceStub(ch)

    opts = session_pb2.SessionOptions(isn_mode=session_pb2.ISN_MODE_FIXED, fixed_isn=1000)
    session = sessions.CreateSession(ses.CreateSessionRequest(session=session_pb2.Session(options=opts)), timeout=10).session
    print(f"session {session.name} (ISN 1000)")

    listener = endpoints.CreateEndpoint(eps.CreateEndpointRequest(
        parent=session.name, endpoint_id="web",
        listen=eps.ListenConfig(local_address="10.0.0.1:80")), timeout=10).endpoint
    print(f"listener {listener.name}: {listener.state_name}")

    def submit(**fields):
        req = sgs.SubmitSegmentRequest(
            parent=session.name, request_id=str(uuid.uuid4()),
            fields=segment_pb2.SegmentFields(source_address="10.0.0.2:40000", destination_address="10.0.0.1:80",
                                             window=65535, **fields))
        first = segments.SubmitSegment(req, timeout=10)
        # A retry with the same request_id returns the same answer and
        # appends nothing.
        again = segments.SubmitSegment(req, timeout=10)
        assert again == first, "a retried SubmitSegment answered differently"
        return first

    syn = submit(seq=100, flags=["SYN"])
    print("> SYN seq=100")
    syn_ack = syn.outputs.segments[0]
    print(f"< {','.join(syn_ack.flags)} seq={syn_ack.seq} ack={syn_ack.ack}")
    for t in syn.outputs.transitions:
        print(f"{t.endpoint}: {t.from_state_name} -> {t.to_state_name} ({t.cause})")
    conn = syn.outputs.transitions[0].endpoint

    ack = submit(seq=101, ack=syn_ack.seq + 1, flags=["ACK"])
    print(f"> ACK seq=101 ack={syn_ack.seq + 1}")
    for t in ack.outputs.transitions:
        print(f"{t.endpoint}: {t.from_state_name} -> {t.to_state_name} ({t.cause})")
    state = endpoints.GetEndpoint(eps.GetEndpointRequest(name=conn), timeout=10).endpoint.state_name
    print(f"{conn}: {state}")

    sessions.DeleteSession(ses.DeleteSessionRequest(name=session.name), timeout=10)


if __name__ == "__main__":
    main()
