package fsm

// Codes of TCP Fast Open (RFC 7413, issue 13), in their own numeric range
// like the recovery codes; only the names are API.
const codeFastOpenBase Code = 1300

const (
	// Client.
	CodeFastOpenClientOff Code = codeFastOpenBase + iota
	CodeFastOpenClientDisabled
	CodeFastOpenCookieRequest
	CodeFastOpenSynCookie
	CodeFastOpenCookieCached
	CodeFastOpenCookieIgnored
	CodeFastOpenServerNoTFO
	CodeFastOpenDataAcked
	CodeFastOpenDataNotAcked
	// Server.
	CodeFastOpenServerOff
	CodeFastOpenCookieSent
	CodeFastOpenCookieValid
	CodeFastOpenCookieInvalid
	numFastOpenCodes
)

const secTFO = "RFC 7413"

var fastOpenCodeSpecs = [numFastOpenCodes - codeFastOpenBase]codeSpec{
	CodeFastOpenClientOff - codeFastOpenBase:      {"FASTOPEN_CLIENT_OFF", secTFO + " §3", "the application asked for Fast Open but the client role is off (switch fastopen.client_enable=0): a plain SYN; the data waits for the handshake"},
	CodeFastOpenClientDisabled - codeFastOpenBase: {"FASTOPEN_CLIENT_DISABLED", secTFO + " §4.1.3.1", "the cookie cache marks this server as not taking Fast Open (an earlier request got no valid cookie, or SYN data was not acknowledged): a plain SYN without the option; the data waits for the handshake"},
	CodeFastOpenCookieRequest - codeFastOpenBase:  {"FASTOPEN_COOKIE_REQUEST", secTFO + " §4.2.1", "no cookie cached for the server: the SYN carries an empty Fast Open option (a cookie request) and no data; the data is sent after the handshake"},
	CodeFastOpenSynCookie - codeFastOpenBase:      {"FASTOPEN_SYN_COOKIE", secTFO + " §4.2.2", "a cookie of {COOKIE.LEN} bytes is cached for the server: the SYN carries it and {SEG.LEN} bytes of data, as much as one segment of the server's cached MSS holds (a retransmitted SYN carries them again)"},
	CodeFastOpenCookieCached - codeFastOpenBase:   {"FASTOPEN_COOKIE_CACHED", secTFO + " §4.1.3", "the SYN,ACK carries a cookie of {COOKIE.LEN} bytes (valid: 4 to 16, even): cached for the server's address, replacing any earlier one"},
	CodeFastOpenCookieIgnored - codeFastOpenBase:  {"FASTOPEN_COOKIE_IGNORED", secTFO + " §4.1.1", "the SYN,ACK's Fast Open option has a cookie of {COOKIE.LEN} bytes, outside 4 to 16 or odd: ignored; the cached cookie is kept"},
	CodeFastOpenServerNoTFO - codeFastOpenBase:    {"FASTOPEN_SERVER_NO_TFO", secTFO + " §4.1.3.1", "the SYN,ACK answers our cookie request without a valid cookie (option present {FO}, cookie {COOKIE.LEN} bytes), or does not acknowledge our SYN's data: the server is cached as not taking Fast Open, later connections to it use a plain SYN"},
	CodeFastOpenDataAcked - codeFastOpenBase:      {"FASTOPEN_DATA_ACKED", secTFO + " §4.2.2", "{SEG.ACK} acknowledges the SYN and its {SYN.DATA} bytes of data: the server took the data; they leave the send buffer"},
	CodeFastOpenDataNotAcked - codeFastOpenBase:   {"FASTOPEN_DATA_NOT_ACKED", secTFO + " §4.2.2", "{SEG.ACK} acknowledges the SYN (ISS {ISS}) but not all of its {SYN.DATA} bytes of data: SND.NXT goes back to SEG.ACK and the data is sent again after the handshake"},
	CodeFastOpenServerOff - codeFastOpenBase:      {"FASTOPEN_SERVER_OFF", secTFO + " §4.2.2", "the SYN carries a Fast Open option but the listener does not do Fast Open (switch fastopen.server_enable=0 or no TCP_FASTOPEN on it): option ignored, normal handshake, data acknowledged only after it"},
	CodeFastOpenCookieSent - codeFastOpenBase:     {"FASTOPEN_COOKIE_SENT", secTFO + " §4.1.2", "the SYN asks for a cookie (or carries an invalid one): the SYN,ACK carries the cookie for the client's address, a keyed hash with the session secret, {COOKIE.LEN} bytes"},
	CodeFastOpenCookieValid - codeFastOpenBase:    {"FASTOPEN_COOKIE_VALID", secTFO + " §4.2.2", "the SYN's cookie is the one for the client's address: its {SEG.LEN} bytes of data are accepted in SYN-RECEIVED, delivered to the application before the handshake completes, and the SYN,ACK acknowledges them ({RCV.NXT})"},
	CodeFastOpenCookieInvalid - codeFastOpenBase:  {"FASTOPEN_COOKIE_INVALID", secTFO + " §4.2.2", "the SYN's cookie ({COOKIE.LEN} bytes) is not the one for the client's address: its {SEG.LEN} bytes of data are dropped, the SYN,ACK acknowledges only the ISN ({RCV.NXT}) and carries a fresh cookie"},
}
