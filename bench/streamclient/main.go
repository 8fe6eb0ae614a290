// streamclient -- the streaming load of bench/run-gateway.sh: it opens chat-completion streams (SSE) and
// measures, per content token as it arrives, the time to the first token and the gaps between tokens.
//
//	streamclient -url URL -body JSON [-H 'Name: value']... -n STREAMS -c CONCURRENCY -expect-tokens N
//	             [-ramp-ms MS] [-probes K -probe-url URL -probe-body JSON] [-rss-pids 1,2,3] [-timeout 5m]
//
// With -c equal to -n every stream is open at once (after a ramp of -ramp-ms spread evenly): once each has
// its first token (or has failed), the resident memory of -rss-pids is read from /proc, and -probes ordinary
// requests are sent one after another to -probe-url while the streams stay open: the gateway "still answers".
//
// Output, one key=value line each (times in milliseconds):
//
//	STREAMS started= complete= failed= ttft_p50= ttft_p90= ttft_max= ttft_mean= gap_mean= gap_p50= gap_p99= tokens_mean= wall=
//	PROBES n= ok= p50= max=           (with -probes)
//	RSS pid=KB ...                    (with -rss-pids: VmRSS while all streams are open)
//	ERROR count=N first="..."         (the first error text, when some streams failed)
//
// A stream is complete when it delivered -expect-tokens content tokens and then [DONE].
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

type headerList []string

func (h *headerList) String() string     { return strings.Join(*h, ", ") }
func (h *headerList) Set(v string) error { *h = append(*h, v); return nil }

var (
	flagURL        = flag.String("url", "", "the chat completions URL")
	flagBody       = flag.String("body", "", "the JSON body of every stream (it must ask for stream:true)")
	flagN          = flag.Int("n", 20, "streams in all")
	flagC          = flag.Int("c", 1, "streams open at once")
	flagExpect     = flag.Int("expect-tokens", 0, "content tokens a complete stream delivers (0 = any)")
	flagRampMs     = flag.Int("ramp-ms", 0, "spread the start of the first -c streams over this time")
	flagProbes     = flag.Int("probes", 0, "ordinary requests sent one by one while all streams are open")
	flagProbeURL   = flag.String("probe-url", "", "URL of the probe requests (default -url)")
	flagProbeBody  = flag.String("probe-body", "", "JSON body of the probe requests")
	flagRSSPids    = flag.String("rss-pids", "", "comma-separated pids whose VmRSS is read while all streams are open")
	flagTimeout    = flag.Duration("timeout", 5*time.Minute, "longest a stream may take")
	flagOpenWaitMs = flag.Int("open-wait-ms", 60000, "longest wait for all streams to have a first token before probing")
	headers        headerList
)

type result struct {
	ttft   time.Duration // to the first content token; <0 when none came
	gaps   []time.Duration
	tokens int
	done   bool
	err    string
}

func isContent(line []byte) bool {
	i := bytes.Index(line, []byte(`"content":"`))
	return i >= 0 && i+11 < len(line) && line[i+11] != '"'
}

func newRequest(ctx context.Context, url, body string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	for _, h := range headers {
		k, v, ok := strings.Cut(h, ":")
		if ok {
			req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	return req, nil
}

// stream runs one stream; first is signalled once when its first token came or it ended.
func stream(client *http.Client, first func()) (r result) {
	r.ttft = -1
	signalled := false
	signal := func() {
		if !signalled {
			signalled = true
			first()
		}
	}
	defer signal()
	ctx, cancel := context.WithTimeout(context.Background(), *flagTimeout)
	defer cancel()
	req, err := newRequest(ctx, *flagURL, *flagBody)
	if err != nil {
		r.err = err.Error()
		return
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		r.err = err.Error()
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		r.err = fmt.Sprintf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
		return
	}
	br := bufio.NewReaderSize(resp.Body, 64*1024)
	var last time.Time
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 && bytes.HasPrefix(line, []byte("data:")) {
			now := time.Now()
			data := bytes.TrimSpace(line[5:])
			if bytes.Equal(data, []byte("[DONE]")) {
				r.done = true
			} else if isContent(data) {
				if r.tokens == 0 {
					r.ttft = now.Sub(start)
					signal()
				} else {
					r.gaps = append(r.gaps, now.Sub(last))
				}
				last = now
				r.tokens++
			} else if bytes.Contains(data, []byte(`"error"`)) && r.err == "" {
				r.err = "error event: " + string(data)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err != io.EOF && r.err == "" {
				r.err = err.Error()
			}
			break
		}
	}
	if !r.done && r.err == "" {
		r.err = "the stream ended without [DONE]"
	}
	return
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 3, 64) }

func pct(s []time.Duration, p float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	i := int(p/100*float64(len(s))+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}

func mean(s []time.Duration) time.Duration {
	if len(s) == 0 {
		return 0
	}
	var t time.Duration
	for _, d := range s {
		t += d
	}
	return t / time.Duration(len(s))
}

func vmRSS(pid string) string {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return "gone"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			return strings.TrimSuffix(strings.Join(strings.Fields(l[6:]), ""), "kB")
		}
	}
	return "?"
}

func probe(client *http.Client) (time.Duration, bool) {
	url := *flagProbeURL
	if url == "" {
		url = *flagURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := newRequest(ctx, url, *flagProbeBody)
	if err != nil {
		return 0, false
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return time.Since(start), false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return time.Since(start), resp.StatusCode == 200
}

func main() {
	flag.Var(&headers, "H", "a request header 'Name: value' (repeatable)")
	flag.Parse()
	if *flagURL == "" || *flagBody == "" || *flagN < 1 || *flagC < 1 {
		fmt.Fprintln(os.Stderr, "usage: streamclient -url URL -body JSON [-n N] [-c C] [options]; see the source")
		os.Exit(2)
	}
	if *flagC > *flagN {
		*flagC = *flagN
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 30 * time.Second}).DialContext,
		MaxIdleConns:        *flagC + 8,
		MaxIdleConnsPerHost: *flagC + 8,
		DisableCompression:  true,
	}
	client := &http.Client{Transport: tr}
	probeClient := &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 2}}

	results := make([]result, *flagN)
	var firsts sync.WaitGroup // the first -c streams: all open (first token) or failed
	firsts.Add(*flagC)
	jobs := make(chan int)
	var wg sync.WaitGroup
	begin := time.Now()
	for w := 0; w < *flagC; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			if *flagRampMs > 0 {
				time.Sleep(time.Duration(*flagRampMs) * time.Millisecond * time.Duration(w) / time.Duration(*flagC))
			}
			once := sync.OnceFunc(firsts.Done)
			for i := range jobs {
				results[i] = stream(client, once)
				once()
			}
		}(w)
	}
	go func() {
		for i := 0; i < *flagN; i++ {
			jobs <- i
		}
		close(jobs)
	}()

	var rssLine, probeLine string
	if *flagProbes > 0 || *flagRSSPids != "" {
		opened := make(chan struct{})
		go func() { firsts.Wait(); close(opened) }()
		select {
		case <-opened:
		case <-time.After(time.Duration(*flagOpenWaitMs) * time.Millisecond):
		}
		if *flagRSSPids != "" {
			var b strings.Builder
			b.WriteString("RSS")
			for _, p := range strings.Split(*flagRSSPids, ",") {
				if p = strings.TrimSpace(p); p != "" {
					fmt.Fprintf(&b, " %s=%s", p, vmRSS(p))
				}
			}
			rssLine = b.String()
		}
		if *flagProbes > 0 {
			var lat []time.Duration
			ok := 0
			for i := 0; i < *flagProbes; i++ {
				d, good := probe(probeClient)
				lat = append(lat, d)
				if good {
					ok++
				}
			}
			sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
			probeLine = fmt.Sprintf("PROBES n=%d ok=%d p50=%s max=%s", len(lat), ok, ms(pct(lat, 50)), ms(lat[len(lat)-1]))
		}
	}
	wg.Wait()
	wall := time.Since(begin)

	var ttfts, gaps []time.Duration
	complete, failed, tokens := 0, 0, 0
	errCount, firstErr := 0, ""
	for _, r := range results {
		if r.ttft >= 0 {
			ttfts = append(ttfts, r.ttft)
		}
		gaps = append(gaps, r.gaps...)
		tokens += r.tokens
		if r.done && r.err == "" && (*flagExpect == 0 || r.tokens == *flagExpect) {
			complete++
		} else {
			failed++
			if r.err != "" {
				errCount++
				if firstErr == "" {
					firstErr = r.err
				}
			} else if firstErr == "" {
				firstErr = fmt.Sprintf("%d tokens instead of %d", r.tokens, *flagExpect)
			}
		}
	}
	sort.Slice(ttfts, func(a, b int) bool { return ttfts[a] < ttfts[b] })
	sort.Slice(gaps, func(a, b int) bool { return gaps[a] < gaps[b] })
	fmt.Printf("STREAMS started=%d complete=%d failed=%d ttft_p50=%s ttft_p90=%s ttft_max=%s ttft_mean=%s gap_mean=%s gap_p50=%s gap_p99=%s tokens_mean=%.1f wall=%s\n",
		len(results), complete, failed, ms(pct(ttfts, 50)), ms(pct(ttfts, 90)), ms(pct(ttfts, 100)), ms(mean(ttfts)),
		ms(mean(gaps)), ms(pct(gaps, 50)), ms(pct(gaps, 99)), float64(tokens)/float64(len(results)), ms(wall))
	if probeLine != "" {
		fmt.Println(probeLine)
	}
	if rssLine != "" {
		fmt.Println(rssLine)
	}
	if failed > 0 {
		fmt.Printf("ERROR count=%d first=%q\n", failed, firstErr)
	}
}
