package esdbstore

import (
	"errors"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// fakeESDB is an in-memory EventStoreDB speaking the Streams gRPC service
// (the only one the store uses), so the store's tests run through the real
// client library without a server. It follows the server's semantics as read
// in its source:
//
//   - each event has its own log position, with commit = prepare;
//   - reading $all forwards from a position includes the event at it;
//   - subscribing to $all from a position excludes the event at it;
//   - an append with an expected revision whose events are already stored
//     right after that revision succeeds without writing and without a
//     position; some but not all of them stored there is a wrong expected
//     version (the server's CorruptedIdempotency answer);
//   - an append whose expected revision is the stream's current one is
//     written whatever ids are stored already (the server checks none);
//   - an append with Any is never deduplicated (the server's check for Any
//     is a cache of recent ids, best-effort, so the store must not rely on
//     it).
type fakeESDB struct {
	api.UnimplementedStreamsServer

	mu      sync.Mutex
	log     []*fakeEvent
	streams map[string][]*fakeEvent
	next    uint64
	changed chan struct{} // closed and replaced on every write

	// positionOfFirst makes a write of several events answer with the
	// first event's position instead of the last's.
	positionOfFirst bool
	// dropAfter ends every subscription with Unavailable after it has sent
	// that many events (0: never).
	dropAfter int
	// subscribedFrom records where each $all subscription started.
	subscribedFrom []string

	addr string
	srv  *grpc.Server
}

type fakeEvent struct {
	id       uuid.UUID
	stream   string
	revision uint64
	pos      uint64
	typ      string
	data     []byte
	meta     []byte
	created  time.Time
}

func newFakeESDB(t *testing.T) *fakeESDB {
	t.Helper()
	f := &fakeESDB{streams: map[string][]*fakeEvent{}, next: 1024, changed: make(chan struct{})}
	// The log never starts with a user event: the server writes its own first.
	f.system("$epoch-information", "$epoch-information")
	f.start(t, "127.0.0.1:0")
	t.Cleanup(f.stop)
	return f
}

func (f *fakeESDB) start(t *testing.T, addr string) {
	t.Helper()
	var lis net.Listener
	var err error
	for range 50 { // the port of a just-stopped server may take a moment to free
		if lis, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	// The client pings every 10s even when idle; the default policy would
	// answer that with GOAWAY.
	srv := grpc.NewServer(grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}))
	api.RegisterStreamsServer(srv, f)
	go srv.Serve(lis)
	f.mu.Lock()
	f.addr, f.srv = lis.Addr().String(), srv
	f.mu.Unlock()
}

func (f *fakeESDB) stop() {
	f.mu.Lock()
	srv := f.srv
	f.mu.Unlock()
	srv.Stop()
}

func (f *fakeESDB) url() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return "esdb://" + f.addr + "?tls=false"
}

// system writes one of the server's own events into the log.
func (f *fakeESDB) system(stream, typ string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.write(stream, typ, uuid.New(), []byte(`{}`), nil)
}

// write stores one event; f.mu must be held.
func (f *fakeESDB) write(stream, typ string, id uuid.UUID, data, meta []byte) *fakeEvent {
	e := &fakeEvent{
		id: id, stream: stream, revision: uint64(len(f.streams[stream])),
		pos: f.next, typ: typ, data: data, meta: meta, created: time.Now().UTC(),
	}
	f.next += 100 + uint64(len(data)+len(meta))
	f.log = append(f.log, e)
	f.streams[stream] = append(f.streams[stream], e)
	close(f.changed)
	f.changed = make(chan struct{})
	return e
}

func (f *fakeESDB) count(stream string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.streams[stream])
}

func (f *fakeESDB) subscriptions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.subscribedFrom...)
}

func (e *fakeEvent) send(srv api.Streams_ReadServer, withPosition bool) error {
	most, least := esdb.UUIDAsInt64(e.id)
	read := &api.ReadResp_ReadEvent{Event: &api.ReadResp_ReadEvent_RecordedEvent{
		Id:               &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{MostSignificantBits: most, LeastSignificantBits: least}}},
		StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(e.stream)},
		StreamRevision:   e.revision,
		PreparePosition:  e.pos,
		CommitPosition:   e.pos,
		Metadata: map[string]string{
			"type":         e.typ,
			"content-type": "application/json",
			"created":      strconv.FormatInt(e.created.UnixNano()/100, 10), // .NET ticks since the Unix epoch
		},
		CustomMetadata: e.meta,
		Data:           e.data,
	}}
	if withPosition {
		read.Position = &api.ReadResp_ReadEvent_CommitPosition{CommitPosition: e.pos}
	} else {
		read.Position = &api.ReadResp_ReadEvent_NoPosition{NoPosition: &shared.Empty{}}
	}
	return srv.Send(&api.ReadResp{Content: &api.ReadResp_Event{Event: read}})
}

func (f *fakeESDB) Read(req *api.ReadReq, srv api.Streams_ReadServer) error {
	o := req.GetOptions()
	switch so := o.GetStreamOption().(type) {
	case *api.ReadReq_Options_Stream:
		return f.readStream(o, so.Stream, srv)
	case *api.ReadReq_Options_All:
		if o.GetSubscription() != nil {
			return f.subscribeAll(o, so.All, srv)
		}
		return f.readAll(o, so.All, srv)
	}
	return status.Error(codes.InvalidArgument, "no stream option")
}

func (f *fakeESDB) readStream(o *api.ReadReq_Options, so *api.ReadReq_Options_StreamOptions, srv api.Streams_ReadServer) error {
	f.mu.Lock()
	events := append([]*fakeEvent(nil), f.streams[string(so.GetStreamIdentifier().GetStreamName())]...)
	f.mu.Unlock()
	if len(events) == 0 {
		return srv.Send(&api.ReadResp{Content: &api.ReadResp_StreamNotFound_{StreamNotFound: &api.ReadResp_StreamNotFound{StreamIdentifier: so.GetStreamIdentifier()}}})
	}
	last := len(events) - 1
	backwards := o.GetReadDirection() == api.ReadReq_Options_Backwards
	var i int
	switch r := so.GetRevisionOption().(type) {
	case *api.ReadReq_Options_StreamOptions_Start:
		i = 0
	case *api.ReadReq_Options_StreamOptions_End:
		i = last
		if !backwards {
			i = last + 1
		}
	case *api.ReadReq_Options_StreamOptions_Revision:
		i = int(min(r.Revision, uint64(last+1)))
		if backwards {
			i = min(i, last)
		}
	}
	for n := uint64(0); n < o.GetCount() && i >= 0 && i <= last; n++ {
		if err := events[i].send(srv, false); err != nil {
			return err
		}
		if backwards {
			i--
		} else {
			i++
		}
	}
	return nil
}

func (f *fakeESDB) readAll(o *api.ReadReq_Options, ao *api.ReadReq_Options_AllOptions, srv api.Streams_ReadServer) error {
	f.mu.Lock()
	log := append([]*fakeEvent(nil), f.log...)
	f.mu.Unlock()
	var picked []*fakeEvent
	if o.GetReadDirection() == api.ReadReq_Options_Backwards {
		for i := len(log) - 1; i >= 0; i-- {
			if p := ao.GetPosition(); p != nil && log[i].pos >= p.GetCommitPosition() {
				continue
			}
			picked = append(picked, log[i])
		}
	} else {
		for _, e := range log {
			switch {
			case ao.GetEnd() != nil:
				continue
			case ao.GetPosition() != nil && e.pos < ao.GetPosition().GetCommitPosition():
				continue
			}
			picked = append(picked, e)
		}
	}
	for n := uint64(0); n < o.GetCount() && int(n) < len(picked); n++ {
		if err := picked[n].send(srv, true); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeESDB) subscribeAll(o *api.ReadReq_Options, ao *api.ReadReq_Options_AllOptions, srv api.Streams_ReadServer) error {
	f.mu.Lock()
	after, inclusive := uint64(0), true
	switch {
	case ao.GetPosition() != nil:
		after, inclusive = ao.GetPosition().GetCommitPosition(), false
		f.subscribedFrom = append(f.subscribedFrom, strconv.FormatUint(after, 10))
	case ao.GetEnd() != nil:
		after, inclusive = f.next, false
		f.subscribedFrom = append(f.subscribedFrom, "end")
	default:
		f.subscribedFrom = append(f.subscribedFrom, "start")
	}
	dropAfter := f.dropAfter
	f.mu.Unlock()

	if err := srv.Send(&api.ReadResp{Content: &api.ReadResp_Confirmation{Confirmation: &api.ReadResp_SubscriptionConfirmation{SubscriptionId: uuid.NewString()}}}); err != nil {
		return err
	}
	filter := o.GetFilter()
	sent := 0
	for {
		f.mu.Lock()
		var pending []*fakeEvent
		for _, e := range f.log {
			if e.pos > after || (inclusive && e.pos == after) {
				pending = append(pending, e)
			}
		}
		changed := f.changed
		f.mu.Unlock()

		for _, e := range pending {
			after, inclusive = e.pos, false
			if !filterMatches(filter, e) {
				cp := &api.ReadResp_Checkpoint{CommitPosition: e.pos, PreparePosition: e.pos}
				if err := srv.Send(&api.ReadResp{Content: &api.ReadResp_Checkpoint_{Checkpoint: cp}}); err != nil {
					return err
				}
				continue
			}
			if err := e.send(srv, true); err != nil {
				return err
			}
			if sent++; dropAfter > 0 && sent >= dropAfter {
				return status.Error(codes.Unavailable, "fake: subscription dropped")
			}
		}
		if err := srv.Send(&api.ReadResp{Content: &api.ReadResp_CaughtUp_{CaughtUp: &api.ReadResp_CaughtUp{}}}); err != nil {
			return err
		}
		select {
		case <-changed:
		case <-srv.Context().Done():
			return nil
		}
	}
}

func filterMatches(fo *api.ReadReq_Options_FilterOptions, e *fakeEvent) bool {
	if fo == nil {
		return true
	}
	expr, subject := fo.GetStreamIdentifier(), e.stream
	if fo.GetEventType() != nil {
		expr, subject = fo.GetEventType(), e.typ
	}
	if expr.GetRegex() != "" {
		return regexp.MustCompile(expr.GetRegex()).MatchString(subject)
	}
	for _, p := range expr.GetPrefix() {
		if strings.HasPrefix(subject, p) {
			return true
		}
	}
	return false
}

func (f *fakeESDB) Append(srv api.Streams_AppendServer) error {
	head, err := srv.Recv()
	if err != nil {
		return err
	}
	opts := head.GetOptions()
	var proposed []*api.AppendReq_ProposedMessage
	for {
		req, err := srv.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		proposed = append(proposed, req.GetProposedMessage())
	}
	name := string(opts.GetStreamIdentifier().GetStreamName())

	f.mu.Lock()
	defer f.mu.Unlock()
	stored := f.streams[name]
	current := int64(len(stored)) - 1 // -1: no stream
	ids := make([]uuid.UUID, len(proposed))
	for i, p := range proposed {
		s := p.GetId().GetStructured()
		ids[i], _ = esdb.ParseUUIDFromInt64(s.GetMostSignificantBits(), s.GetLeastSignificantBits())
	}

	expected, exact := int64(0), true
	switch r := opts.GetExpectedStreamRevision().(type) {
	case *api.AppendReq_Options_Revision:
		expected = int64(r.Revision)
	case *api.AppendReq_Options_NoStream:
		expected = -1
	default:
		exact = false
	}
	if exact {
		if idempotent(stored, expected+1, ids) {
			return srv.SendAndClose(&api.AppendResp{Result: &api.AppendResp_Success_{Success: &api.AppendResp_Success{
				CurrentRevisionOption: &api.AppendResp_Success_CurrentRevision{CurrentRevision: uint64(expected) + uint64(len(ids))},
				PositionOption:        &api.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}},
			}}})
		}
		if current != expected {
			wrong := &api.AppendResp_WrongExpectedVersion{}
			if current < 0 {
				wrong.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &shared.Empty{}}
			} else {
				wrong.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(current)}
			}
			if expected < 0 {
				wrong.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &shared.Empty{}}
			} else {
				wrong.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: uint64(expected)}
			}
			return srv.SendAndClose(&api.AppendResp{Result: &api.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: wrong}})
		}
	}

	var first, last *fakeEvent
	for i, p := range proposed {
		e := f.write(name, p.GetMetadata()["type"], ids[i], p.GetData(), p.GetCustomMetadata())
		if first == nil {
			first = e
		}
		last = e
	}
	pos := &api.AppendResp_Position{CommitPosition: last.pos, PreparePosition: first.pos}
	if f.positionOfFirst {
		pos = &api.AppendResp_Position{CommitPosition: first.pos, PreparePosition: first.pos}
	}
	return srv.SendAndClose(&api.AppendResp{Result: &api.AppendResp_Success_{Success: &api.AppendResp_Success{
		CurrentRevisionOption: &api.AppendResp_Success_CurrentRevision{CurrentRevision: last.revision},
		PositionOption:        &api.AppendResp_Success_Position{Position: pos},
	}}})
}

// idempotent reports whether ids are stored at revisions from on.
func idempotent(stored []*fakeEvent, from int64, ids []uuid.UUID) bool {
	if from < 0 || int(from)+len(ids) > len(stored) {
		return false
	}
	for i, id := range ids {
		if stored[int(from)+i].id != id {
			return false
		}
	}
	return true
}
