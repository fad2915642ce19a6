package service

import (
	"github.com/prometheus/client_golang/prometheus"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// metrics are the service's Prometheus collectors. They exist (and are
// updated) even when no registry is given.
type metrics struct {
	sessionsCreated    prometheus.Counter
	segmentsIn         prometheus.Counter
	segmentsOut        prometheus.Counter
	inputs             *prometheus.CounterVec
	logAppends         prometheus.Counter
	durableWait        prometheus.Histogram
	restoreDifferences prometheus.Counter
	takeovers          prometheus.Counter // replica.go
	handovers          prometheus.Counter
	repeats            prometheus.Counter // requestid.go
	expired            prometheus.Counter // expiry.go
	panics             prometheus.Counter // panic.go
	byKind             [len(inputKindNames)]prometheus.Counter
}

func newMetrics(s *Service, reg prometheus.Registerer) *metrics {
	m := &metrics{
		sessionsCreated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tcpstated_sessions_created_total", Help: "Sessions created.",
		}),
		segmentsIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tcpstated_segments_in_total", Help: "Segments submitted to engines (logged inputs).",
		}),
		segmentsOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tcpstated_segments_out_total", Help: "Segments emitted by engines.",
		}),
		inputs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tcpstated_inputs_total", Help: "Inputs applied and logged, by kind.",
		}, []string{"kind"}),
		logAppends: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tcpstated_log_appends_total", Help: "Records appended to session logs.",
		}),
		durableWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tcpstated_log_durable_wait_seconds",
			Help:    "Time a call waited for its log records to become durable (fsync, group commit).",
			Buckets: prometheus.ExponentialBuckets(1e-5, 2, 18),
		}),
		restoreDifferences: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tcpstated_restore_differences_total", Help: "Sessions whose re-run on start differed from their log.",
		}),
		takeovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tcpstated_replica_takeovers_total", Help: "Sessions this replica took over from one whose lease had expired, by replaying their log.",
		}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tcpstated_session_panics_total", Help: "Sessions failed because the engine panicked on one of their calls.",
		}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tcpstated_sessions_expired_total", Help: "Sessions removed with their logs because they expired (Session.expire_time, ttl).",
		}),
		repeats: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tcpstated_request_id_repeats_total", Help: "Mutating calls answered without running again because their request_id had been seen.",
		}),
		handovers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tcpstated_replica_handovers_total", Help: "Sessions this replica dropped because another replica had taken their lease (its append was fenced).",
		}),
	}
	for i, n := range inputKindNames {
		m.byKind[i] = m.inputs.WithLabelValues(n)
	}
	if reg != nil {
		reg.MustRegister(m.sessionsCreated, m.segmentsIn, m.segmentsOut, m.inputs, m.logAppends, m.durableWait, m.restoreDifferences, m.takeovers, m.handovers, m.repeats, m.expired, m.panics,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "tcpstated_sessions", Help: "Sessions held by the server (with replicas: the sessions this replica owns).",
			}, func() float64 { return float64(s.SessionCount()) }))
	}
	return m
}

var inputKindNames = [...]string{"unknown", "segment", "advance_clock", "listen", "connect", "accept", "send", "receive", "shutdown", "close", "abort", "md5_key"}

func inputKind(in *pb.Input) int {
	switch in.Kind.(type) {
	case *pb.Input_Segment:
		return 1
	case *pb.Input_AdvanceClock:
		return 2
	case *pb.Input_Listen:
		return 3
	case *pb.Input_Connect:
		return 4
	case *pb.Input_Accept:
		return 5
	case *pb.Input_Send:
		return 6
	case *pb.Input_Receive:
		return 7
	case *pb.Input_Shutdown:
		return 8
	case *pb.Input_Close:
		return 9
	case *pb.Input_Abort:
		return 10
	case *pb.Input_Md5Key:
		return 11
	}
	return 0
}

// observeStep counts one logged input and the packets it emitted.
func (m *metrics) observeStep(in *pb.Input, emitted int) {
	var t stepTally
	t.add(in, emitted)
	m.observeSteps(&t)
}

// stepTally counts the logged inputs of a batch (an ExchangeSegments
// message) so that the counters are updated once for the whole batch.
type stepTally struct {
	byKind  [len(inputKindNames)]int
	emitted int
}

func (t *stepTally) add(in *pb.Input, emitted int) {
	t.byKind[inputKind(in)]++
	t.emitted += emitted
}

// observeSteps adds the tally to the counters and empties it.
func (m *metrics) observeSteps(t *stepTally) {
	for k, n := range t.byKind {
		if n > 0 {
			m.byKind[k].Add(float64(n))
		}
	}
	if n := t.byKind[1]; n > 0 {
		m.segmentsIn.Add(float64(n))
	}
	if t.emitted > 0 {
		m.segmentsOut.Add(float64(t.emitted))
	}
	*t = stepTally{}
}
