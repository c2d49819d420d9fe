// Command winrmgo drives a WinRM endpoint with the Go masterzen/winrm
// client library and prints, as one JSON object on standard output, what
// the client saw: per command the exit code, the output, its length and
// SHA-256, the error the library returned, and a log of every SOAP request
// the library posted (action, sizes, duration, error, any fault in the
// answer).
//
// It judges nothing itself; tests/integration/test_winrs_go.py checks the
// report.  The exit status is 0 when a report was printed, 2 on a usage
// error and 3 when the scenario overran -deadline (a partial report is
// printed first).
//
// Usage:
//
//	winrmgo -url http://127.0.0.1:5985/wsman -user U -password P \
//	        [-cafile ca.pem | -insecure] -scenario echo
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"math/rand"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/masterzen/winrm"
	"github.com/masterzen/winrm/soap"
)

// Unicode text sent in the command line and on stdin by the "unicode"
// scenario; the test compares the output with the same strings.
const (
	unicodeArg    = "Grüße ✓ 日本語 🎉"
	unicodeStdin  = "stdin: żółw ☃ 𝄞 Ωμέγα\n"
	unicodeStderr = "ошибка ✗"
)

// Output longer than this is reported by length and digest only; the
// first headBytes bytes of stdout and stdin are also reported in hex.
const (
	maxTextReport = 64 * 1024
	headBytes     = 256
)

var (
	flagURL       = flag.String("url", "", "endpoint URL; the library always posts to /wsman on its host and port")
	flagUser      = flag.String("user", "", "user name (HTTP Basic)")
	flagPassword  = flag.String("password", "", "password")
	flagCAFile    = flag.String("cafile", "", "PEM file with the CA that signed the server certificate")
	flagInsecure  = flag.Bool("insecure", false, "skip verification of the server certificate")
	flagAuth      = flag.String("auth", "basic", "basic (Basic), ntlm (the library's NTLM transport) or cert (client certificate, HTTPS)")
	flagCert      = flag.String("cert", "", "PEM client certificate (-auth cert)")
	flagKey       = flag.String("key", "", "PEM key of the client certificate (-auth cert)")
	flagScenario  = flag.String("scenario", "", "echo, exit, stderr, stdin, stdin-stream, stdin-string, stdin-early-exit, unicode, bigout, multi, parallel, timeout, terminate")
	flagOpTimeout = flag.String("operation-timeout", "PT60S", "wsman:OperationTimeout sent on every request")
	flagHTTPTime  = flag.Duration("http-timeout", 60*time.Second, "HTTP response-header timeout of the client")
	flagEnvelope  = flag.Int("envelope-size", 153600, "wsman:MaxEnvelopeSize sent on every request")
	flagSize      = flag.Int("size", 0, "bytes of stdin (stdin*) or stdout (bigout); 0 = scenario default")
	flagCount     = flag.Int("count", 8, "clients for the parallel scenario")
	flagSleep     = flag.Float64("sleep", 8, "seconds the timeout scenario's command sleeps")
	flagDeadline  = flag.Duration("deadline", 100*time.Second, "give up (exit 3) after this long")
)

// result is what the client saw for one command.
type result struct {
	Name         string  `json:"name"`
	Command      string  `json:"command"`
	ExitCode     int     `json:"exit_code"`
	Error        string  `json:"error,omitempty"`
	Stdout       *string `json:"stdout,omitempty"`
	Stderr       *string `json:"stderr,omitempty"`
	StdoutLen    int     `json:"stdout_len"`
	StderrLen    int     `json:"stderr_len"`
	StdoutSHA256 string  `json:"stdout_sha256"`
	StderrSHA256 string  `json:"stderr_sha256"`
	StdoutHead   string  `json:"stdout_head"`
	StdinLen     int     `json:"stdin_len,omitempty"`
	StdinSHA256  string  `json:"stdin_sha256,omitempty"`
	StdinHead    string  `json:"stdin_head,omitempty"`
	Seconds      float64 `json:"seconds"`
}

// request is one SOAP request the library posted.  This version of the
// library hands a SOAP fault body back as a successful answer (its Post
// loses the "http error" it builds for a non-200 status), so faults are
// recognised here from the body.
type request struct {
	Action        string  `json:"action"`
	Bytes         int     `json:"bytes"`
	Start         float64 `json:"start"`
	Seconds       float64 `json:"seconds"`
	Error         string  `json:"error,omitempty"`
	ResponseBytes int     `json:"response_bytes"`
	Fault         string  `json:"fault,omitempty"`
	FaultCode     string  `json:"fault_code,omitempty"`
	FaultText     string  `json:"fault_text,omitempty"`
	// The body holds the word the library looks for to retry a Receive.
	OperationTimeout bool `json:"operation_timeout"`
}

type report struct {
	Scenario string    `json:"scenario"`
	URL      string    `json:"url"`
	Error    string    `json:"error,omitempty"`
	Seconds  float64   `json:"seconds"`
	Results  []result  `json:"results"`
	Requests []request `json:"requests"`
}

var (
	mu        sync.Mutex
	rep       report
	started   = time.Now()
	printOnce sync.Once
)

func addResult(r result) {
	mu.Lock()
	rep.Results = append(rep.Results, r)
	mu.Unlock()
}

// printReport prints the report once and exits; the deadline timer and
// the end of the scenario may race to it.
func printReport(exit int) {
	printOnce.Do(func() { writeReport(exit) })
	select {}
}

func writeReport(exit int) {
	mu.Lock()
	rep.Seconds = time.Since(started).Seconds()
	out, err := json.MarshalIndent(&rep, "", " ")
	mu.Unlock()
	if err != nil {
		fmt.Fprintln(os.Stderr, "winrmgo: encoding the report:", err)
		os.Exit(1)
	}
	os.Stdout.Write(append(out, '\n'))
	os.Exit(exit)
}

// recorder is a winrm.Transporter that logs each request of the library's
// own HTTP transport.
type recorder struct {
	inner winrm.Transporter
}

var (
	actionRE  = regexp.MustCompile(`<a:Action[^>]*>([^<]*)</a:Action>`)
	faultRE   = regexp.MustCompile(`<(?:[\w.-]+:)?Fault[\s>]`)
	subcodeRE = regexp.MustCompile(`<(?:[\w.-]+:)?Subcode>\s*<(?:[\w.-]+:)?Value>([^<]*)<`)
	codeRE    = regexp.MustCompile(`<(?:[\w.-]+:)?WSManFault[^>]*\sCode="([^"]*)"`)
	reasonRE  = regexp.MustCompile(`<(?:[\w.-]+:)?Text[^>]*>([^<]*)<`)
)

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

func (r *recorder) Transport(ep *winrm.Endpoint) error {
	return r.inner.Transport(ep)
}

func (r *recorder) Post(c *winrm.Client, msg *soap.SoapMessage) (string, error) {
	text := msg.String()
	action := "?"
	if m := actionRE.FindStringSubmatch(text); m != nil {
		action = m[1][strings.LastIndex(m[1], "/")+1:]
	}
	t0 := time.Now()
	body, err := r.inner.Post(c, msg)
	req := request{
		Action:  action,
		Bytes:   len(text),
		Start:   t0.Sub(started).Seconds(),
		Seconds: time.Since(t0).Seconds(),
	}
	if err != nil {
		req.Error = clip(err.Error(), 2000)
	}
	req.ResponseBytes = len(body)
	req.OperationTimeout = strings.Contains(body+req.Error, "OperationTimeout")
	if faultRE.MatchString(body) {
		req.Fault = "?"
		if m := subcodeRE.FindStringSubmatch(body); m != nil {
			req.Fault = strings.TrimSpace(m[1])
		}
		if m := codeRE.FindStringSubmatch(body); m != nil {
			req.FaultCode = m[1]
		}
		if m := reasonRE.FindStringSubmatch(body); m != nil {
			req.FaultText = clip(strings.TrimSpace(m[1]), 500)
		}
	}
	mu.Lock()
	rep.Requests = append(rep.Requests, req)
	mu.Unlock()
	return body, err
}

func newClient() (*winrm.Client, error) {
	u, err := url.Parse(*flagURL)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		return nil, fmt.Errorf("no port in %q", *flagURL)
	}
	https := u.Scheme == "https"
	var ca []byte
	if *flagCAFile != "" {
		if ca, err = ioutil.ReadFile(*flagCAFile); err != nil {
			return nil, err
		}
	}
	var cert, key []byte
	if *flagAuth == "cert" {
		if cert, err = ioutil.ReadFile(*flagCert); err != nil {
			return nil, err
		}
		if key, err = ioutil.ReadFile(*flagKey); err != nil {
			return nil, err
		}
	}
	ep := winrm.NewEndpoint(u.Hostname(), port, https, *flagInsecure, ca,
		cert, key, *flagHTTPTime)
	params := winrm.NewParameters(*flagOpTimeout, "en-US", *flagEnvelope)
	var inner winrm.Transporter
	switch *flagAuth {
	case "basic":
		inner = winrm.NewClientWithDial(nil)
	case "ntlm":
		inner = winrm.NewClientNTLMWithDial(nil)
	case "cert":
		inner = winrm.NewClientAuthRequestWithDial(nil)
	default:
		return nil, fmt.Errorf("unknown -auth %q", *flagAuth)
	}
	params.TransportDecorator = func() winrm.Transporter {
		return &recorder{inner: inner}
	}
	return winrm.NewClientWithParameters(ep, *flagUser, *flagPassword, params)
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func text(b []byte) *string {
	if len(b) > maxTextReport || !utf8.Valid(b) {
		return nil
	}
	s := string(b)
	return &s
}

func head(b []byte) string {
	if len(b) > headBytes {
		b = b[:headBytes]
	}
	return hex.EncodeToString(b)
}

func fill(r *result, stdout, stderr []byte, code int, err error, t0 time.Time) {
	r.ExitCode = code
	if err != nil {
		r.Error = err.Error()
	}
	r.Stdout, r.Stderr = text(stdout), text(stderr)
	r.StdoutLen, r.StderrLen = len(stdout), len(stderr)
	r.StdoutSHA256, r.StderrSHA256 = digest(stdout), digest(stderr)
	r.StdoutHead = head(stdout)
	r.Seconds = time.Since(t0).Seconds()
}

// run runs one command with Client.Run (no stdin).
func run(c *winrm.Client, name, command string) result {
	var stdout, stderr bytes.Buffer
	t0 := time.Now()
	code, err := c.Run(command, &stdout, &stderr)
	r := result{Name: name, Command: command}
	fill(&r, stdout.Bytes(), stderr.Bytes(), code, err, t0)
	return r
}

// runInput runs one command with Client.RunWithInput.
func runInput(c *winrm.Client, name, command string, in io.Reader,
	inData []byte) result {
	var stdout, stderr bytes.Buffer
	t0 := time.Now()
	code, err := c.RunWithInput(command, &stdout, &stderr, in)
	r := result{Name: name, Command: command, StdinLen: len(inData),
		StdinSHA256: digest(inData), StdinHead: head(inData)}
	fill(&r, stdout.Bytes(), stderr.Bytes(), code, err, t0)
	return r
}

// onlyReader hides bytes.Reader's WriteTo, so io.Copy writes 32 KiB at a
// time and the library sends one small rsp:Send per chunk.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func pseudoRandom(n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(20200615)).Read(b)
	return b
}

// execute runs one command in an existing shell the way Client.Run does:
// two goroutines copy the output while Wait blocks, then Close.
func execute(sh *winrm.Shell, name, command string, args ...string) result {
	t0 := time.Now()
	r := result{Name: name, Command: strings.Join(append([]string{command}, args...), " ")}
	cmd, err := sh.Execute(command, args...)
	if err != nil {
		fill(&r, nil, nil, -1, err, t0)
		return r
	}
	var stdout, stderr bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); io.Copy(&stdout, cmd.Stdout) }()
	go func() { defer wg.Done(); io.Copy(&stderr, cmd.Stderr) }()
	cmd.Wait()
	wg.Wait()
	// The terminate Signal the library sends after Done must succeed.
	cerr := cmd.Close()
	fill(&r, stdout.Bytes(), stderr.Bytes(), cmd.ExitCode(), cerr, t0)
	return r
}

// terminate starts a long command, waits for its first line (its process
// id), then closes it the only way the library can: Command.Close sends
// the terminate Signal while the Receive loop is still polling.  The
// result's Seconds is how long Wait took after Close.
func terminate(c *winrm.Client) error {
	sh, err := c.CreateShell()
	if err != nil {
		return err
	}
	defer sh.Close()
	command := "echo $$; exec sleep 60"
	r := result{Name: "terminate", Command: command}
	cmd, err := sh.Execute(command)
	if err != nil {
		return err
	}
	var stdout, stderr bytes.Buffer
	go io.Copy(&stderr, cmd.Stderr)
	line := make([]byte, 0, 32)
	buf := make([]byte, 1)
	for len(line) < 32 {
		if _, err := cmd.Stdout.Read(buf); err != nil {
			fill(&r, line, nil, cmd.ExitCode(), err, time.Now())
			addResult(r)
			return nil
		}
		line = append(line, buf[0])
		if buf[0] == '\n' {
			break
		}
	}
	stdout.Write(line)
	// Let the library's next Receive reach the server and wait there.
	time.Sleep(time.Second)
	cerr := cmd.Close()
	t0 := time.Now()
	cmd.Wait()
	fill(&r, stdout.Bytes(), stderr.Bytes(), cmd.ExitCode(), cerr, t0)
	addResult(r)
	return nil
}

func scenario(name string) error {
	size := func(def int) int {
		if *flagSize > 0 {
			return *flagSize
		}
		return def
	}
	switch name {
	case "echo", "exit", "stderr", "stdin", "stdin-stream", "stdin-string",
		"stdin-early-exit", "unicode", "bigout", "timeout", "terminate":
		c, err := newClient()
		if err != nil {
			return err
		}
		switch name {
		case "echo":
			addResult(run(c, name, "echo hello"))
		case "exit":
			addResult(run(c, name, "exit 7"))
		case "stderr":
			addResult(run(c, name, "echo out; echo oops >&2; exit 3"))
		case "stdin":
			data := pseudoRandom(size(1 << 20))
			addResult(runInput(c, name, "cat", bytes.NewReader(data), data))
		case "stdin-stream":
			data := pseudoRandom(size(1 << 20))
			addResult(runInput(c, name, "cat",
				onlyReader{bytes.NewReader(data)}, data))
		case "stdin-string":
			// RunWithString ends stdin only when it returns, after the
			// command has finished, so the command must stop reading
			// by itself.
			in := "hello from go\nsecond line\n"
			cmd := "head -n 2 | tr a-z A-Z"
			t0 := time.Now()
			o, e, code, err := c.RunWithString(cmd, in)
			r := result{Name: name, Command: cmd,
				StdinLen: len(in), StdinSHA256: digest([]byte(in))}
			fill(&r, []byte(o), []byte(e), code, err, t0)
			addResult(r)
		case "unicode":
			cmd := fmt.Sprintf("printf '%%s\\n' '%s'; cat; printf '%%s\\n' '%s' >&2",
				unicodeArg, unicodeStderr)
			in := []byte(unicodeStdin)
			addResult(runInput(c, name, cmd, bytes.NewReader(in), in))
		case "bigout":
			n := size(10 << 20)
			addResult(run(c, name,
				fmt.Sprintf("seq 1 100000000 | head -c %d; echo tail >&2", n)))
		case "stdin-early-exit":
			// The command stops reading long before the input ends.
			data := pseudoRandom(size(4 << 20))
			addResult(runInput(c, name, "head -c 100; exit 5",
				bytes.NewReader(data), data))
		case "timeout":
			addResult(run(c, name, fmt.Sprintf(
				"echo started; sleep %g; echo finished", *flagSleep)))
		case "terminate":
			return terminate(c)
		}
		return nil
	case "multi":
		c, err := newClient()
		if err != nil {
			return err
		}
		sh, err := c.CreateShell()
		if err != nil {
			return err
		}
		addResult(execute(sh, "first", "echo one"))
		addResult(execute(sh, "exit", "exit 4"))
		addResult(execute(sh, "stderr", "echo two >&2"))
		addResult(execute(sh, "arguments", "echo", "arg1", "arg2"))
		addResult(execute(sh, "last", "echo three; exit 0"))
		// Two commands of the same shell running at once.
		var wg sync.WaitGroup
		for _, tag := range []string{"A", "B"} {
			wg.Add(1)
			go func(tag string) {
				defer wg.Done()
				addResult(execute(sh, "concurrent-"+tag,
					fmt.Sprintf("sleep 1; echo %s", tag)))
			}(tag)
		}
		wg.Wait()
		if err := sh.Close(); err != nil {
			return fmt.Errorf("deleting the shell: %v", err)
		}
		return nil
	case "parallel":
		var wg sync.WaitGroup
		errs := make(chan error, *flagCount)
		for i := 0; i < *flagCount; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				c, err := newClient()
				if err != nil {
					errs <- err
					return
				}
				addResult(run(c, fmt.Sprintf("client-%d", i), fmt.Sprintf(
					"echo client %d; sleep 1; echo done %d >&2; exit %d",
					i, i, i%5)))
			}(i)
		}
		wg.Wait()
		close(errs)
		return <-errs
	}
	fmt.Fprintf(os.Stderr, "winrmgo: unknown scenario %q\n", name)
	os.Exit(2)
	return nil
}

func main() {
	flag.Parse()
	if *flagURL == "" || *flagScenario == "" || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	rep.Scenario, rep.URL = *flagScenario, *flagURL
	rep.Results, rep.Requests = []result{}, []request{}
	time.AfterFunc(*flagDeadline, func() {
		mu.Lock()
		rep.Error = fmt.Sprintf("scenario still running after %v", *flagDeadline)
		mu.Unlock()
		printReport(3)
	})
	if err := scenario(*flagScenario); err != nil {
		mu.Lock()
		rep.Error = err.Error()
		mu.Unlock()
	}
	printReport(0)
}
