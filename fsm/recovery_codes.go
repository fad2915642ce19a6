package fsm

// Codes of the receiver's reassembly and of the sender's loss recovery and
// congestion control (issue 11). They live in their own numeric range so
// this table grows without renumbering the codes of codes.go; only the
// names are API.
const codeRecoveryBase Code = 1000

const (
	// Receiver: every byte not taken is explained.
	CodeDataOutOfOrderDuplicate Code = codeRecoveryBase + iota
	CodeOutOfOrderQueueFull
	CodeDataBufferFull
	// Sender: SACK-based loss recovery (RFC 6675) and PRR (RFC 6937).
	CodeAckSACKed
	CodeSACKRecovery
	CodeSACKNextSeg
	CodeSACKRecoveryDone
	CodeSACKRecoveryHeld
	CodeSACKScoreboardCleared
	CodePRR
	// RACK-TLP (RFC 8985).
	CodeRACKLost
	CodeTLPProbe
	CodeTLPLossRepaired
	// Congestion control (RFC 9438, RFC 9406).
	CodeCubicEpoch
	CodeHyStartCSS
	CodeHyStartExit
	// RTT measurement.
	CodeRTTSampleSACK
	// Spurious timeouts.
	CodeSpuriousRTO
	// F-RTO (RFC 5682).
	CodeFRTOStart
	CodeFRTONotEntered
	CodeFRTONewData
	CodeFRTOConventional
	CodeFRTOGenuine
	CodeFRTOSpurious
	// ECN (RFC 3168).
	CodeECNNegotiated
	CodeECNCongestionExperienced
	CodeECNCWRReceived
	CodeECNReduce
	CodeECNSetupFallback
	// Receiver, appended: the queue dropped behind a buffer overrun.
	CodeOutOfOrderDiscarded
	// Spurious fast retransmit (RFC 3522, RFC 4015), appended.
	CodeSpuriousFastRetransmit
	// Slow start counting a stretch ACK whole (ss_all_bytes), appended.
	CodeSlowStartAllBytes
	// The scoreboard kept across a timeout (rto_keep_sack), appended.
	CodeSACKScoreboardKept
	// CUBIC's multiplicative decrease (RFC 9438 §4.6), appended.
	CodeCubicReduce
	numRecoveryCodes
)

const (
	secReassembly = "RFC 9293 §3.10.7.4"
	secSACK       = "RFC 6675 §5"
	secPRR        = "RFC 6937 §3"
)

var recoveryCodeSpecs = [numRecoveryCodes - codeRecoveryBase]codeSpec{
	CodeDataOutOfOrderDuplicate - codeRecoveryBase: {"DATA_OUT_OF_ORDER_DUPLICATE", secReassembly, "seventh, process the segment text: {SEG.SEQ} {SEG.LEN} is above {RCV.NXT} and every byte of it is already held for reassembly ({OOO.BYTES} bytes in {OOO.BLOCKS} blocks): discarded as a duplicate; a duplicate ACK sent at once (RFC 5681 §4.2)"},
	CodeOutOfOrderQueueFull - codeRecoveryBase:     {"OUT_OF_ORDER_QUEUE_FULL", secReassembly, "seventh, process the segment text: {SEG.SEQ} {SEG.LEN} is above {RCV.NXT} and would start a new block of out-of-order data, but {OOO.BLOCKS} blocks are held, the limit (RCV.BUFF/MSS, at least 64): discarded, the sender will retransmit it"},
	CodeDataBufferFull - codeRecoveryBase:          {"DATA_BUFFER_FULL", secReassembly, "seventh, process the segment text: the receive buffer holds {BUFFERED} of {RCV.BUFF} bytes: {DISCARDED} bytes at {SEG.SEQ} did not fit and were discarded"},

	CodeAckSACKed - codeRecoveryBase:                {"ACK_SACKED", "RFC 6675 §2, §5", "the ACK ({SEG.ACK}) SACKs {SACKED} new bytes, so it counts as duplicate ACK {DUPACKS}; pipe={PIPE} bytes in flight, cwnd {CWND}, ssthresh {SSTHRESH}; loss recovery starts at DupThresh (3) duplicates or once IsLost(HighACK+1)"},
	CodeSACKRecovery - codeRecoveryBase:             {"SACK_RECOVERY", "RFC 6675 §5 (4)", "loss recovery entered after {DUPACKS} duplicate ACKs (or IsLost(HighACK+1)): RecoveryPoint = HighData = {RECOVERY.POINT}; ssthresh = cwnd = {SSTHRESH} from FlightSize {FLIGHT} (less limited transmit) × β (1/2 for Reno, RFC 5681; 0.7 for CUBIC, RFC 9438); fast retransmit of {SEG.SEQ}; pipe was {PIPE}"},
	CodeSACKNextSeg - codeRecoveryBase:              {"SACK_NEXT_SEGMENT", "RFC 6675 §4 NextSeg(), §5 (C)", "cwnd {CWND} - pipe {PIPE} >= 1 SMSS (ssthresh {SSTHRESH}): sent {SEG.SEQ} {SEG.LEN} chosen by NextSeg rule {RULE} (1: lost, 2: new data, 3: unSACKed, 4: rescue)"},
	CodeSACKRecoveryDone - codeRecoveryBase:         {"SACK_RECOVERY_DONE", "RFC 6675 §5 (A), RFC 6937 §3", "{SEG.ACK} passes RecoveryPoint {RECOVERY.POINT}: loss recovery ends with cwnd = ssthresh = {SSTHRESH} (cwnd {CWND})"},
	CodeSACKRecoveryHeld - codeRecoveryBase:         {"SACK_RECOVERY_HELD", "RFC 6675 §5.1", "loss would start recovery, but a retransmission timeout set RecoveryPoint {RECOVERY.POINT} and SND.UNA {SND.UNA} has not reached it: no new recovery yet"},
	CodeSACKScoreboardCleared - codeRecoveryBase:    {"SACK_SCOREBOARD_CLEARED", "RFC 2018 §8, RFC 6675 §5.1", "retransmission timeout: the {BLOCKS} SACKed ranges are forgotten (the receiver may have reneged) and loss recovery ends; RecoveryPoint = HighData = {RECOVERY.POINT}"},
	CodeRACKLost - codeRecoveryBase:                 {"RACK_LOST", "RFC 8985 §6.2", "RACK: segments sent before the most recently delivered one (RACK.end_seq {RACK.END.SEQ}) and not delivered within RACK.rtt {RACK.RTT.MS} ms + reo_wnd {REO.WND.MS} ms of their transmission are lost: {LOST.BYTES} bytes marked (min_RTT {MIN.RTT.MS} ms)"},
	CodeTLPProbe - codeRecoveryBase:                 {"TLP_PROBE", "RFC 8985 §7.3", "the probe timeout (2·SRTT, SRTT {SRTT.MS} ms) expired with no ACK: sent a tail loss probe {SEG.SEQ} {SEG.LEN} ({RETRANSMISSION}: 1 = the last segment again, 0 = new data); TLP.end_seq {TLP.END.SEQ}; the RTO is restarted"},
	CodeTLPLossRepaired - codeRecoveryBase:          {"TLP_LOSS_REPAIRED", "RFC 8985 §7.4", "{SEG.ACK} acknowledges past the probe (TLP.end_seq {TLP.END.SEQ}) without a D-SACK: the probe repaired a loss, so cwnd is reduced as for fast recovery: ssthresh {SSTHRESH}, cwnd {CWND}"},
	CodeCubicEpoch - codeRecoveryBase:               {"CUBIC_EPOCH", "RFC 9438 §4.2", "CUBIC congestion avoidance starts an epoch: W_max {W_MAX} bytes, K = cbrt((W_max - cwnd)/C) = {K.MS} ms, cwnd {CWND}, ssthresh {SSTHRESH}; cwnd follows C·(t-K)³ + W_max, or the Reno-friendly W_est when that is larger"},
	CodeHyStartCSS - codeRecoveryBase:               {"HYSTART_CSS", "RFC 9406 §4.2", "HyStart++: this round's minimum RTT {RTT.MS} ms is at least the last round's {LAST.RTT.MS} ms + RttThresh {RTT.THRESH.MS} ms: slow start turns conservative (a quarter of the growth) at cwnd {CWND}"},
	CodeHyStartExit - codeRecoveryBase:              {"HYSTART_EXIT", "RFC 9406 §4.2", "HyStart++: {CSS.ROUNDS} rounds of conservative slow start: ssthresh = cwnd = {CWND}, congestion avoidance begins"},
	CodeRTTSampleSACK - codeRecoveryBase:            {"RTT_SAMPLE_SACK", "RFC 6298 §2, §3", "the ACK SACKs data sent once (Karn's algorithm admits it) {RTT.MS} ms ago: RTT sample taken; SRTT {SRTT.MS} ms, RTTVAR {RTTVAR.MS} ms, RTO {RTO.MS} ms"},
	CodeSpuriousRTO - codeRecoveryBase:              {"SPURIOUS_RTO", "RFC 3522 §2, RFC 4015 §2", "the first ACK after the timeout's retransmission echoes {SEG.TSECR}, older than the retransmission's timestamp {RETRANSMIT.TS}: the original was delivered and the timeout was spurious (Eifel detection); go-back-N stops, ssthresh = pipe_prev = {SSTHRESH}, cwnd = FlightSize + min(acked, IW) = {CWND}, RTO {RTO.MS} ms"},
	CodeFRTOStart - codeRecoveryBase:                {"FRTO_START", "RFC 5682 §2.1 (1), §3 (1)", "F-RTO step 1 (VARIANT {VARIANT}: 1 SACK-enhanced §3, 0 basic §2.1): the timeout's retransmission of {SND.UNA} is sent and recover = {RECOVER}; the next two ACKs decide whether the timeout was spurious; pipe_prev {PIPE.PREV} is kept for the response"},
	CodeFRTONotEntered - codeRecoveryBase:           {"FRTO_NOT_ENTERED", "RFC 5682 §2.1 (1)", "the timer expired again during RTO recovery (SND.UNA {SND.UNA} has not passed recover {RECOVER}): F-RTO is not entered, conventional RTO recovery goes on and recover = {NEW.RECOVER}"},
	CodeFRTONewData - codeRecoveryBase:              {"FRTO_NEW_DATA", "RFC 5682 §2.1 (2b), §3 (2b)", "F-RTO step 2b: the first ACK after the timeout ({SEG.ACK}) advances SND.UNA but does not reach recover {RECOVER}: instead of retransmitting, up to two new segments are sent (cwnd = FlightSize + 2·SMSS = {CWND}); RecoveryPoint {RECOVERY.POINT}; the next ACK decides"},
	CodeFRTOConventional - codeRecoveryBase:         {"FRTO_CONVENTIONAL", "RFC 5682 §2.1 (2a), §3 (2a)", "F-RTO step 2 falls back to conventional RTO recovery (REASON {REASON}: 1 the ACK {SEG.ACK} covers recover {RECOVER}, 2 a duplicate ACK (basic F-RTO), 3 the ACK does not cover the retransmitted segment, 4 no new data can be sent: nothing unsent or the peer's window is full): go-back-N in slow start, cwnd {CWND}"},
	CodeFRTOGenuine - codeRecoveryBase:              {"FRTO_RTO_GENUINE", "RFC 5682 §2.1 (3a), §3 (3a)", "F-RTO step 3a: the second ACK after the timeout ({SEG.ACK}, SACKs up to {SACK.HIGH}) is a duplicate or acknowledges beyond RecoveryPoint {RECOVERY.POINT} without new data below it: the timeout was genuine; cwnd = {CWND} (at most 3·SMSS) and conventional RTO recovery retransmits from {SND.UNA}"},
	CodeFRTOSpurious - codeRecoveryBase:             {"FRTO_SPURIOUS_RTO", "RFC 5682 §2.1 (3b), §3 (3b); RFC 4015 §2", "F-RTO step 3b: the second ACK after the timeout ({SEG.ACK}, {SACKED} bytes newly SACKed) acknowledges data sent only before the timeout, not beyond RecoveryPoint {RECOVERY.POINT}: the timeout was spurious (SpuriousRecovery = SPUR_TO); Eifel response: no go-back-N, ssthresh = pipe_prev = {SSTHRESH}, cwnd = FlightSize + min(acked, IW) = {CWND}"},
	CodeECNNegotiated - codeRecoveryBase:            {"ECN_NEGOTIATED", "RFC 3168 §6.1.1", "ECN is on for this connection (SYN.ACK {SYN.ACK}: 0 the peer's SYN carried ECE and CWR and our SYN,ACK will carry ECE; 1 the peer's SYN,ACK carried ECE without CWR): new data is sent ECT(0), CE marks are echoed with ECE, ECE reduces cwnd"},
	CodeECNCongestionExperienced - codeRecoveryBase: {"ECN_CONGESTION_EXPERIENCED", "RFC 3168 §6.1.3", "{SEG.SEQ} {SEG.LEN} arrived with CE in its IP header: every ACK sets ECE until a segment with CWR arrives"},
	CodeECNCWRReceived - codeRecoveryBase:           {"ECN_CWR_RECEIVED", "RFC 3168 §6.1.3", "{SEG.SEQ} carries CWR: the sender has reduced its window, so ACKs stop setting ECE"},
	CodeECNReduce - codeRecoveryBase:                {"ECN_REDUCE", "RFC 3168 §6.1.2", "the ACK ({SEG.ACK}) carries ECE: the network marked congestion, so cwnd and ssthresh are reduced as for a loss, without a retransmission: ssthresh = {SSTHRESH} from FlightSize {FLIGHT}, cwnd = {CWND}; ECE is ignored until SND.UNA passes {RECOVER} (once per window), and the next new data segment carries CWR"},
	CodeECNSetupFallback - codeRecoveryBase:         {"ECN_SETUP_FALLBACK", "RFC 3168 §6.1.1.1", "no reply came to the ECN-setup SYN (SYN.ACK 0) or SYN,ACK (SYN.ACK 1) within {RETRIES} retransmission timeouts, more than ecn_maxretries={ECN.MAXRETRIES}: a middlebox may drop ECN-setup packets, so this retransmission and any later one go without ECE and CWR (a SYN,ACK sent so no longer grants ECN: the connection does without it)"},
	CodeOutOfOrderDiscarded - codeRecoveryBase:      {"OUT_OF_ORDER_DISCARDED", secReassembly, "seventh, process the segment text: the receive buffer is full at {RCV.NXT}, so the {OOO.BYTES} bytes in {OOO.BLOCKS} blocks held for reassembly beyond it are discarded too; the sender will retransmit them"},
	CodeSpuriousFastRetransmit - codeRecoveryBase:   {"SPURIOUS_FAST_RETRANSMIT", "RFC 3522 §2, RFC 4015 §2", "the first ACK of new data after the fast retransmit echoes {SEG.TSECR}, older than the retransmission's timestamp {RETRANSMIT.TS}: the original arrived, so the segment was reordered, not lost (Eifel detection); loss recovery ends and, unless the ACK carries ECE (ECE {ECE}), the reduction is undone, once and no further than it went (RFC 9438 §4.9 for CUBIC's W_max, K and epoch): ssthresh = max(ssthresh, ssthresh before) = {SSTHRESH}, cwnd = max(cwnd, min(cwnd before, FlightSize + min(acked, IW))) = {CWND}"},
	CodeSACKScoreboardKept - codeRecoveryBase:       {"SACK_SCOREBOARD_KEPT", "RFC 2018 §8, RFC 6675 §5.1", "retransmission timeout: the {BLOCKS} SACKed ranges are kept (rto_keep_sack: SND.UNA {SND.UNA} is not SACKed, so the receiver has not reneged; RFC 2018 §8's SHOULD clear them is not followed, as Linux does not), so going back N resends only the holes; loss recovery ends; RecoveryPoint = HighData = {RECOVERY.POINT}"},
	CodeCubicReduce - codeRecoveryBase:              {"CUBIC_REDUCE", "RFC 9438 §4.6", "CUBIC's multiplicative decrease on congestion (a loss or an ECE): ssthresh = max(FlightSize {FLIGHT} × β_cubic 0.7, 2·SMSS) = {SSTHRESH}, where Reno (congestion_control=reno) would halve; W_max = {W_MAX} from cwnd {CWND} (× (1+β)/2 when cwnd is below the last W_max: fast convergence, §4.7)"},
	CodeSlowStartAllBytes - codeRecoveryBase:        {"SLOW_START_ALL_BYTES", "RFC 3465 §2.2, RFC 5681 §3.1", "in slow start (cwnd {OLD.CWND} < ssthresh {SSTHRESH}) an ACK of {ACKED} bytes, more than one SMSS, counts whole (ss_all_bytes; RFC 5681 (2) would open one SMSS): cwnd = min(cwnd + acked, ssthresh) = {CWND}"},
	CodePRR - codeRecoveryBase:                      {"PRR", secPRR, "Proportional Rate Reduction: DeliveredData {DELIVERED}, prr_delivered {PRR.DELIVERED}, prr_out {PRR.OUT}; pipe {PIPE} against ssthresh {SSTHRESH} (proportional above it, the reduction bound at or below): sndcnt {SNDCNT}, cwnd = pipe + sndcnt"},
}
