// fake_llm -- a fast fake OpenAI-compatible upstream for the gateway benchmarks (bench/run-gateway.sh).
//
// It answers POST /v1/chat/completions and /chat/completions with a chat.completion JSON, or with an SSE
// stream when the request has "stream": true (one chunk per token, a usage chunk when
// stream_options.include_usage is set, then [DONE]); any other path ending in /chat/completions too.
// GET /v1/models (and any path ending in /models) lists the model ids,
// GET /stats the counters (so a run can check that a gateway really called the upstream).
//
// The answer's shape is set per process by flags and per request by, in order of precedence:
//   - request headers   X-Fake-Tokens, X-Fake-Delay-Ms, X-Fake-First-Ms
//   - body fields       "fake_tokens", "fake_delay_ms", "fake_first_ms"
//   - a directive anywhere in the body text (e.g. in the user message, which every gateway passes on
//     unchanged): fake:tokens=20,delay_ms=1000,first_ms=0
//
// Gateways differ in which headers and unknown body fields they forward; the directive always arrives.
//
// Only the standard library is used, and the answer is assembled with append rather than encoding/json,
// so that the fake costs a small fraction of what a gateway costs per request.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

var (
	flagTokens   = flag.Int("tokens", 16, "answer length in tokens")
	flagDelayMs  = flag.Int("delay-ms", 0, "delay between two tokens of a stream (0 = zero-delay mode)")
	flagFirstMs  = flag.Int("first-ms", 0, "delay before the first byte of an answer")
	flagListen   = flag.String("listen", "127.0.0.1:0", "address to listen on (port 0 = a free port)")
	flagPortFile = flag.String("port-file", "", "write the chosen port to this file once listening")
	flagModels   = flag.String("models", "fake-model", "comma-separated model ids listed by GET /v1/models")
	flagKey      = flag.String("key", "", "require Authorization: Bearer KEY (empty = accept any)")
)

const maxBody = 16 << 20
const maxTokens = 100000
const maxDelayMs = 600000

var (
	nRequests atomic.Int64 // chat requests answered (JSON and streams)
	nStreams  atomic.Int64 // of which streams
	nComplete atomic.Int64 // streams that reached [DONE]
	nAborted  atomic.Int64 // streams the client left before the end
	idSeq     atomic.Int64
)

// One token of the answer; every token is the same word so that answers of equal length have equal size.
const word = "hello "

type chatReq struct {
	Model         string `json:"model"`
	Stream        bool   `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	FakeTokens  *int `json:"fake_tokens"`
	FakeDelayMs *int `json:"fake_delay_ms"`
	FakeFirstMs *int `json:"fake_first_ms"`
}

type shape struct{ tokens, delayMs, firstMs int }

func clamp(v, lo, hi int) int {
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

// directive applies "fake:tokens=N,delay_ms=D,first_ms=F" found in the raw body.
func directive(body []byte, s *shape) {
	i := bytes.Index(body, []byte("fake:"))
	if i < 0 {
		return
	}
	rest := body[i+5:]
	end := 0
	for end < len(rest) {
		c := rest[end]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '=' || c == ',') {
			break
		}
		end++
	}
	for _, kv := range strings.Split(string(rest[:end]), ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			continue
		}
		switch k {
		case "tokens":
			s.tokens = n
		case "delay_ms":
			s.delayMs = n
		case "first_ms":
			s.firstMs = n
		}
	}
}

func headerInt(r *http.Request, name string, dst *int) {
	if v := r.Header.Get(name); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			*dst = n
		}
	}
}

// appendJSONString appends s as a JSON string literal.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, fmt.Sprintf("\\u%04x", c)...)
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// head appends the fields every answer and chunk starts with.
func head(b []byte, id int64, object string, created int64, model string) []byte {
	b = append(b, `{"id":"chatcmpl-fake`...)
	b = append(b, fmt.Sprintf("%012d", id)...)
	b = append(b, `","object":"`...)
	b = append(b, object...)
	b = append(b, `","created":`...)
	b = strconv.AppendInt(b, created, 10)
	b = append(b, `,"model":`...)
	return appendJSONString(b, model)
}

func usage(b []byte, prompt, completion int) []byte {
	b = append(b, `"usage":{"prompt_tokens":`...)
	b = strconv.AppendInt(b, int64(prompt), 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, int64(completion), 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, int64(prompt+completion), 10)
	return append(b, '}')
}

func sleepOrDone(r *http.Request, ms int) bool {
	if ms <= 0 {
		return true
	}
	t := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

func openAIError(w http.ResponseWriter, status int, msg, typ string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b := append([]byte(`{"error":{"message":`), appendJSONString(nil, msg)...)
	b = append(b, `,"type":"`...)
	b = append(b, typ...)
	b = append(b, `","code":null}}`...)
	w.Write(b)
}

func chat(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		openAIError(w, 405, "use POST", "invalid_request_error")
		return
	}
	if *flagKey != "" && r.Header.Get("Authorization") != "Bearer "+*flagKey {
		openAIError(w, 401, "Incorrect API key provided", "invalid_request_error")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		openAIError(w, 400, "unreadable or oversized body", "invalid_request_error")
		return
	}
	var req chatReq
	if err := json.Unmarshal(body, &req); err != nil {
		openAIError(w, 400, "the body is not valid JSON: "+err.Error(), "invalid_request_error")
		return
	}
	s := shape{*flagTokens, *flagDelayMs, *flagFirstMs}
	directive(body, &s)
	if req.FakeTokens != nil {
		s.tokens = *req.FakeTokens
	}
	if req.FakeDelayMs != nil {
		s.delayMs = *req.FakeDelayMs
	}
	if req.FakeFirstMs != nil {
		s.firstMs = *req.FakeFirstMs
	}
	headerInt(r, "X-Fake-Tokens", &s.tokens)
	headerInt(r, "X-Fake-Delay-Ms", &s.delayMs)
	headerInt(r, "X-Fake-First-Ms", &s.firstMs)
	s.tokens = clamp(s.tokens, 1, maxTokens)
	s.delayMs = clamp(s.delayMs, 0, maxDelayMs)
	s.firstMs = clamp(s.firstMs, 0, maxDelayMs)
	model := req.Model
	if model == "" {
		model = "fake-model"
	}
	// A rough count, as a tokenizer would give for English text: four bytes a token.
	prompt := len(body)/4 + 1
	id := idSeq.Add(1)
	created := time.Now().Unix()
	nRequests.Add(1)

	if !sleepOrDone(r, s.firstMs) {
		return
	}
	if !req.Stream {
		b := make([]byte, 0, 320+len(model)+len(word)*s.tokens)
		b = head(b, id, "chat.completion", created, model)
		b = append(b, `,"choices":[{"index":0,"message":{"role":"assistant","content":"`...)
		for i := 0; i < s.tokens; i++ {
			b = append(b, word...)
		}
		b = append(b, `"},"finish_reason":"stop"}],`...)
		b = usage(b, prompt, s.tokens)
		b = append(b, '}')
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = []string{strconv.Itoa(len(b))}
		w.Write(b)
		return
	}

	nStreams.Add(1)
	fl, _ := w.(http.Flusher)
	h := w.Header()
	h["Content-Type"] = []string{"text/event-stream"}
	h["Cache-Control"] = []string{"no-cache"}
	w.WriteHeader(200)
	b := make([]byte, 0, 512+len(model))
	send := func() bool {
		if _, err := w.Write(b); err != nil {
			return false
		}
		if fl != nil {
			fl.Flush()
		}
		return true
	}
	for i := 0; i < s.tokens; i++ {
		if i > 0 && !sleepOrDone(r, s.delayMs) {
			nAborted.Add(1)
			return
		}
		b = append(b[:0], "data: "...)
		b = head(b, id, "chat.completion.chunk", created, model)
		if i == 0 {
			b = append(b, `,"choices":[{"index":0,"delta":{"role":"assistant","content":"`...)
		} else {
			b = append(b, `,"choices":[{"index":0,"delta":{"content":"`...)
		}
		b = append(b, word...)
		b = append(b, "\"},\"finish_reason\":null}]}\n\n"...)
		if !send() {
			nAborted.Add(1)
			return
		}
	}
	b = append(b[:0], "data: "...)
	b = head(b, id, "chat.completion.chunk", created, model)
	b = append(b, `,"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}`+"\n\n"...)
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		b = append(b, "data: "...)
		b = head(b, id, "chat.completion.chunk", created, model)
		b = append(b, `,"choices":[],`...)
		b = usage(b, prompt, s.tokens)
		b = append(b, "}\n\n"...)
	}
	b = append(b, "data: [DONE]\n\n"...)
	if !send() {
		nAborted.Add(1)
		return
	}
	nComplete.Add(1)
}

func models(w http.ResponseWriter, r *http.Request) {
	b := []byte(`{"object":"list","data":[`)
	for i, m := range strings.Split(*flagModels, ",") {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = appendJSONString(b, strings.TrimSpace(m))
		b = append(b, `,"object":"model","created":1700000000,"owned_by":"fake"}`...)
	}
	b = append(b, "]}"...)
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

func stats(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"requests":%d,"streams":%d,"streams_complete":%d,"streams_aborted":%d}`,
		nRequests.Load(), nStreams.Load(), nComplete.Load(), nAborted.Load())
}

func main() {
	flag.Parse()
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/chat/completions", chat)
	mux.HandleFunc("/chat/completions", chat)
	mux.HandleFunc("/v1/models", models)
	mux.HandleFunc("/models", models)
	mux.HandleFunc("/stats", stats)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/" || r.URL.Path == "/health":
			w.Write([]byte("ok\n"))
			return
		// Gateways join base URLs and API paths in their own ways (/v1/v1/..., /openai/v1/...): any
		// path that ends like an OpenAI route is served as that route.
		case strings.HasSuffix(r.URL.Path, "/chat/completions"):
			chat(w, r)
			return
		case strings.HasSuffix(r.URL.Path, "/models"):
			models(w, r)
			return
		}
		openAIError(w, 404, "no route "+r.URL.Path, "invalid_request_error")
	})

	ln, err := net.Listen("tcp", *flagListen)
	if err != nil {
		log.Fatalf("fake_llm: %v", err)
	}
	if *flagPortFile != "" {
		// Written atomically, so a reader never sees a partial number.
		port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
		tmp := *flagPortFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(port+"\n"), 0o644); err != nil {
			log.Fatalf("fake_llm: %v", err)
		}
		if err := os.Rename(tmp, *flagPortFile); err != nil {
			log.Fatalf("fake_llm: %v", err)
		}
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 5 * time.Minute}
	log.Printf("fake_llm listening on %s (tokens=%d delay-ms=%d first-ms=%d)", ln.Addr(), *flagTokens, *flagDelayMs, *flagFirstMs)
	log.Fatal(srv.Serve(ln))
}
