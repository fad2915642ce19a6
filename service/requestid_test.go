package service

import (
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/tcpstated/tcpstated/gen/tcpstate/v1"
)

// TestRequestIDs: repeats of SendData and ReceiveData with a request_id
// return the first response and log nothing, concurrent or not, also from
// the log after a restart; a failed first call leaves no trace; an error's
// ErrorInfo names the request_id.
func TestRequestIDs(t *testing.T) {
	e := newEnv(t, Config{})
	s := e.createSession("rid", fixedISNOptions(1000))
	e.listen(s.Name, "10.0.0.1:80")
	e.submit(s.Name, seg("10.0.0.2:40000", "10.0.0.1:80", 100, 0, []string{"SYN"}, ""))
	e.submit(s.Name, seg("10.0.0.2:40000", "10.0.0.1:80", 101, 1001, []string{"ACK"}, "hello"))
	conn := s.Name + "/endpoints/2"

	send := &pb.SendDataRequest{Name: conn, Payload: &pb.SendDataRequest_Text{Text: "abc"}, RequestId: "send-1"}
	first := must[*pb.SendDataResponse](t)(e.endpoints.SendData(ctx(t), send))
	n := e.recordCount(s.Name)
	done := make(chan *pb.SendDataResponse, 8)
	for i := 0; i < 8; i++ {
		go func() {
			r, err := e.endpoints.SendData(ctx(t), send)
			if err != nil {
				t.Error(err)
			}
			done <- r
		}()
	}
	for i := 0; i < 8; i++ {
		if r := <-done; !protoEqual(r, first) {
			t.Fatalf("repeat %v, first %v", r, first)
		}
	}
	if m := e.recordCount(s.Name); m != n {
		t.Fatalf("repeats logged: %d records, then %d", n, m)
	}
	recv := &pb.ReceiveDataRequest{Name: conn, RequestId: "recv-1"}
	got := must[*pb.ReceiveDataResponse](t)(e.endpoints.ReceiveData(ctx(t), recv))
	if got.Text != "hello" {
		t.Fatalf("receive: %v", got)
	}

	// A first call that fails leaves the ID unused.
	bad := &pb.ReceiveDataRequest{Name: s.Name + "/endpoints/1", RequestId: "bad-1"}
	_, err := e.endpoints.ReceiveData(ctx(t), bad)
	wantCode(t, err, codes.FailedPrecondition)
	var info *errdetails.ErrorInfo
	for _, d := range status.Convert(err).Details() {
		if d, ok := d.(*errdetails.ErrorInfo); ok {
			info = d
		}
	}
	if info == nil || info.Metadata["request_id"] != "bad-1" {
		t.Fatalf("ErrorInfo %v lacks the request_id", info)
	}
	_, err = e.endpoints.ReceiveData(ctx(t), bad)
	wantCode(t, err, codes.FailedPrecondition)

	// After a restart: answered from the log.
	e.restart()
	again := must[*pb.ReceiveDataResponse](t)(e.endpoints.ReceiveData(ctx(t), recv))
	if again.Text != "hello" || e.recordCount(s.Name) != n+2 {
		t.Fatalf("after restart: %v, %d records (want %d)", again, e.recordCount(s.Name), n+2)
	}
	if r := must[*pb.SendDataResponse](t)(e.endpoints.SendData(ctx(t), send)); r.BytesAccepted != 3 {
		t.Fatalf("send after restart: %v", r)
	}
	_, err = e.endpoints.SendData(ctx(t), &pb.SendDataRequest{Name: conn, Payload: &pb.SendDataRequest_Text{Text: "x"}, RequestId: string(make([]byte, 200))})
	wantCode(t, err, codes.InvalidArgument)
}
