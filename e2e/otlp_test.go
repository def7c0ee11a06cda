package e2e

import (
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"

	collogspb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// span is one exported span, flattened for assertions.
type span struct {
	TraceID, SpanID, ParentID string
	Name                      string
	Kind                      tracepb.Span_SpanKind
	Service                   string
	Attrs                     map[string]string
	Events                    []string
	// Raw is every string the span carries, for leak checks.
	Raw string
}

// logRecord is one exported log line, flattened for assertions.
type logRecord struct {
	TraceID, SpanID, Service, Body string
	// Raw is every string the record carries, for leak checks.
	Raw string
}

// receiver is an OTLP/HTTP endpoint for traces and logs: what a collector
// would receive.
type receiver struct {
	URL string
	srv *http.Server

	mu    sync.Mutex
	spans []span
	logs  []logRecord
}

func startReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{URL: "http://" + ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.export)
	mux.HandleFunc("POST /v1/logs", r.exportLogs)
	r.srv = &http.Server{Handler: mux}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *receiver) Close() { _ = r.srv.Close() }

// readBody reads an OTLP/HTTP request body, gzipped or not.
func readBody(req *http.Request) ([]byte, error) {
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(req.Body)
		if err != nil {
			return nil, err
		}
		body = gz
	}
	return io.ReadAll(body)
}

func (r *receiver) exportLogs(w http.ResponseWriter, req *http.Request) {
	b, err := readBody(req)
	var msg collogspb.ExportLogsServiceRequest
	if err == nil {
		err = proto.Unmarshal(b, &msg)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var got []logRecord
	for _, rl := range msg.ResourceLogs {
		service := attrs(rl.GetResource().GetAttributes())["service.name"]
		for _, sl := range rl.ScopeLogs {
			for _, l := range sl.LogRecords {
				rec := logRecord{TraceID: hex.EncodeToString(l.TraceId), SpanID: hex.EncodeToString(l.SpanId), Service: service,
					Body: anyString(l.Body)}
				rec.Raw = rec.Body + flatten(attrs(l.Attributes))
				got = append(got, rec)
			}
		}
	}
	r.mu.Lock()
	r.logs = append(r.logs, got...)
	r.mu.Unlock()
	respond(w, &collogspb.ExportLogsServiceResponse{})
}

// respond answers an OTLP/HTTP export.
func respond(w http.ResponseWriter, msg proto.Message) {
	out, _ := proto.Marshal(msg)
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// flatten writes attributes as " k=v" pairs, for leak checks.
func flatten(m map[string]string) string {
	var b strings.Builder
	for k, v := range m {
		b.WriteString(" " + k + "=" + v)
	}
	return b.String()
}

// Logs returns every log record received so far.
func (r *receiver) Logs() []logRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]logRecord(nil), r.logs...)
}

func (r *receiver) export(w http.ResponseWriter, req *http.Request) {
	b, err := readBody(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var msg coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var got []span
	for _, rs := range msg.ResourceSpans {
		service := attrs(rs.GetResource().GetAttributes())["service.name"]
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				sp := span{
					TraceID: hex.EncodeToString(s.TraceId), SpanID: hex.EncodeToString(s.SpanId),
					ParentID: hex.EncodeToString(s.ParentSpanId), Name: s.Name, Kind: s.Kind,
					Service: service, Attrs: attrs(s.Attributes),
				}
				sp.Raw = s.Name + flatten(sp.Attrs)
				for _, e := range s.Events {
					sp.Events = append(sp.Events, e.Name)
					sp.Raw += " " + e.Name + flatten(attrs(e.Attributes))
				}
				sp.Raw += " " + s.GetStatus().GetMessage()
				got = append(got, sp)
			}
		}
	}
	r.mu.Lock()
	r.spans = append(r.spans, got...)
	r.mu.Unlock()
	respond(w, &coltracepb.ExportTraceServiceResponse{})
}

// Trace returns the spans of one trace received so far.
func (r *receiver) Trace(traceID string) []span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []span
	for _, s := range r.spans {
		if s.TraceID == traceID {
			out = append(out, s)
		}
	}
	return out
}

// All returns every span received so far.
func (r *receiver) All() []span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]span(nil), r.spans...)
}

func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = anyString(kv.Value)
	}
	return m
}

func anyString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	case *commonpb.AnyValue_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	default:
		return v.String()
	}
}
