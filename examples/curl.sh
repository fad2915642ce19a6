#!/bin/sh
# The three-way handshake against a running tcpstated, with curl alone.
#
#   examples/curl.sh [HOST:PORT]     (default: $TCPSTATED_HTTP or 127.0.0.1:8080)
#
# It creates a session with fixed ISNs, opens a listener on 10.0.0.1:80,
# submits a peer's SYN and its ACK of tcpstated's SYN-ACK, and prints the
# state of each endpoint after each step. The session stays; look at it in
# the web view (the last line prints its address).
set -eu
HTTP="http://${1:-${TCPSTATED_HTTP:-127.0.0.1:8080}}"

# field NAME: the first "NAME":"value" string of the JSON on stdin.
field() { grep -o "\"$1\": *\"[^\"]*\"" | head -n 1 | sed 's/.*: *"\(.*\)"/\1/'; }
call() { # METHOD PATH [BODY]
	if [ $# -gt 2 ]; then
		curl -sS --fail-with-body -X "$1" -H 'Content-Type: application/json' "$HTTP$2" -d "$3"
	else
		curl -sS --fail-with-body -X "$1" "$HTTP$2"
	fi
}

session=$(call POST /v1/sessions '{"options": {"isnMode": "ISN_MODE_FIXED", "fixedIsn": 1000}}' | field name)
echo "session $session (ISN 1000)"

call POST "/v1/$session/endpoints" '{"endpointId": "web", "listen": {"localAddress": "10.0.0.1:80"}}' >/dev/null
echo "listener $session/endpoints/web: $(call GET "/v1/$session/endpoints/web" | field stateName)"

# The peer's SYN (seq 100); tcpstated answers with a SYN-ACK in the same response.
out=$(call POST "/v1/$session/segments" '{"fields": {"sourceAddress": "10.0.0.2:40000",
	"destinationAddress": "10.0.0.1:80", "seq": 100, "flags": ["SYN"], "window": 65535}}')
conn=$(printf '%s' "$out" | grep -o '"transitions": *\[[^]]*' | field endpoint)
synack=$(printf '%s' "$out" | grep -o '"segments": *\[.*' | field summary)
echo "> SYN seq=100"
echo "< $synack"
echo "connection $conn: $(call GET "/v1/$conn" | field stateName)"

# The peer's ACK of the SYN-ACK (ack = ISS + 1) completes the handshake.
call POST "/v1/$session/segments" '{"fields": {"sourceAddress": "10.0.0.2:40000",
	"destinationAddress": "10.0.0.1:80", "seq": 101, "ack": 1001, "flags": ["ACK"], "window": 65535}}' >/dev/null
echo "> ACK seq=101 ack=1001"
echo "connection $conn: $(call GET "/v1/$conn" | field stateName)"
echo "web view: $HTTP/ui/#/$session"
