package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// client talks to a broker's /v1 API.
type client struct {
	addr  string
	token string
	http  *http.Client
}

// apiError is a non-2xx answer, decoded from the broker's error body.
type apiError struct {
	Code    int    `json:"code"`
	Title   string `json:"title"`
	Message string `json:"message"`
	Fields  []struct {
		Field  string `json:"field"`
		Reason string `json:"reason"`
	} `json:"fields"`
	RequestID string `json:"request_id"`
}

func (e *apiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", e.Code, e.Title)
	if len(e.Fields) == 0 {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	for _, f := range e.Fields {
		fmt.Fprintf(&b, "\n  - %s: %s", f.Field, f.Reason)
	}
	return b.String()
}

// newClient reads CLOUDMUX_ADDR and CLOUDMUX_TOKEN; without a token it logs
// in with CLOUDMUX_USERNAME / CLOUDMUX_PASSWORD when those are set.
func newClient(ctx context.Context, getenv func(string) string) (*client, error) {
	addr := getenv("CLOUDMUX_ADDR")
	if addr == "" {
		addr = "http://127.0.0.1:8080"
	}
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("CLOUDMUX_ADDR=%q is not an http(s) URL", addr)
	}
	transport, err := brokerTransport(getenv)
	if err != nil {
		return nil, err
	}
	c := &client{addr: strings.TrimRight(addr, "/"), token: getenv("CLOUDMUX_TOKEN"), http: &http.Client{
		Timeout: 60 * time.Second, Transport: transport,
		// Go strips Authorization on a cross-host redirect but not
		// X-Auth-Token: refuse redirects rather than send a token elsewhere.
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			return fmt.Errorf("the broker redirected to %s; not following with a token", req.URL.Redacted())
		},
	}}
	if c.token == "" && getenv("CLOUDMUX_USERNAME") != "" {
		var out struct{ Token string }
		err := c.do(ctx, http.MethodPost, "/v1/auth/tokens", map[string]string{
			"username": getenv("CLOUDMUX_USERNAME"), "password": getenv("CLOUDMUX_PASSWORD"),
		}, &out)
		if err != nil {
			return nil, fmt.Errorf("log in as %s: %w", getenv("CLOUDMUX_USERNAME"), err)
		}
		c.token = out.Token
	}
	return c, nil
}

// brokerTransport is http.DefaultTransport, trusting besides the system's
// CAs those in CLOUDMUX_CACERT (a -dev-tls broker's CA, or an
// installation's private one).
func brokerTransport(getenv func(string) string) (http.RoundTripper, error) {
	file := getenv("CLOUDMUX_CACERT")
	if file == "" {
		return http.DefaultTransport, nil
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("CLOUDMUX_CACERT: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(raw) {
		return nil, fmt.Errorf("CLOUDMUX_CACERT: %s holds no PEM certificate", file)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return t, nil
}

// do sends a JSON body (or raw bytes when body is []byte) and decodes a JSON
// answer into out (when non-nil).
func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	contentType := "application/json"
	switch b := body.(type) {
	case nil:
	case []byte:
		rd, contentType = bytes.NewReader(b), "application/yaml"
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.addr+path, rd)
	if err != nil {
		return err
	}
	if rd != nil {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("X-Auth-Token", c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the broker at %s: %w", c.addr, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var eb struct{ Error apiError }
		if json.Unmarshal(raw, &eb) == nil && eb.Error.Code != 0 {
			return &eb.Error
		}
		return &apiError{Code: resp.StatusCode, Title: http.StatusText(resp.StatusCode), Message: strings.TrimSpace(string(raw))}
	}
	if out != nil && len(raw) > 0 {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// exitCode maps an error to the CLI's exit status.
func exitCode(stderr io.Writer, err error) int {
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "error: %v\n", err)
	return 1
}

func getenv(name string) string { return os.Getenv(name) }
