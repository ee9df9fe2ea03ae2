package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker"
)

// MetricsConfig keeps /metrics from anyone who can reach the API: on its
// own listener (plain HTTP, loopback unless CLOUDMUX_ALLOW_PUBLIC_LISTEN=1),
// behind a bearer token, or both. With neither, the API listener serves it
// to anyone, and the broker says so at start.
type MetricsConfig struct {
	Listen    string `yaml:"listen"`
	TokenFile string `yaml:"token_file"`
}

// minMetricsToken is the shortest token accepted: anything shorter is a
// password someone typed, not a generated secret.
const minMetricsToken = 16

func (m MetricsConfig) validate(allowPublic bool, bad func(field, format string, args ...any)) {
	if m.Listen != "" {
		checkListen("metrics.listen", m.Listen, allowPublic, bad)
	}
	if m.TokenFile != "" {
		if _, err := readMetricsToken(m.TokenFile); err != nil {
			bad("metrics.token_file", "%v", err)
		}
	}
}

// checkListen reports an address that is not host:port, or not loopback
// when public listening was not allowed.
func checkListen(field, addr string, allowPublic bool, bad func(field, format string, args ...any)) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		bad(field, "must be host:port: %v", err)
		return
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) && !allowPublic {
		bad(field, "%q is not a loopback address; cloudmux listens on loopback unless CLOUDMUX_ALLOW_PUBLIC_LISTEN=1", host)
	}
}

// readMetricsToken is the token file's content without surrounding
// whitespace (a trailing newline is not part of the token).
func readMetricsToken(file string) (string, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("cannot read: %w", err)
	}
	tok := strings.TrimSpace(string(raw))
	if len(tok) < minMetricsToken {
		return "", fmt.Errorf("%s must hold a token of at least %d characters (openssl rand -hex 32 makes one)", file, minMetricsToken)
	}
	return tok, nil
}

// listenAPI opens the API listener, with TLS when configured, and returns
// its URL scheme and the reloader SIGHUP drives (nil without TLS).
func listenAPI(cfg Config) (net.Listener, string, *certReloader, error) {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, "", nil, err
	}
	if !cfg.TLS.enabled() {
		return ln, "http", nil, nil
	}
	tc, reloader, err := serverTLS(cfg.TLS)
	if err != nil {
		ln.Close()
		return nil, "", nil, err
	}
	return tls.NewListener(ln, tc), "https", reloader, nil
}

// reloadOnHUP re-reads the certificate and key on every SIGHUP until ctx
// ends. It subscribes before returning, so a SIGHUP sent once the broker
// is serving never takes Go's default action (exit).
func reloadOnHUP(r *certReloader, log logrus.FieldLogger) func(context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return func(ctx context.Context) error {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-hup:
				l := log.WithFields(logrus.Fields{"cert_file": r.certFile, "key_file": r.keyFile})
				if err := r.reload(); err != nil {
					l.WithError(err).Error("SIGHUP: the new TLS certificate and key do not load; still serving the previous ones")
					continue
				}
				leaf := r.cur.Load().Leaf
				l.WithFields(logrus.Fields{"serial": leaf.SerialNumber.Text(16), "not_after": leaf.NotAfter.UTC().Format(time.RFC3339)}).
					Info("SIGHUP: TLS certificate reloaded")
			}
		}
	}
}

// startMetrics applies cfg.Metrics: the token the API's /metrics needs and
// whether the API serves it at all. With metrics.listen it starts the admin
// listener, whose server the caller shuts down (nil otherwise).
func startMetrics(cfg MetricsConfig, reg *prometheus.Registry, bc *broker.Config, log logrus.FieldLogger) (*http.Server, error) {
	if cfg.TokenFile != "" {
		tok, err := readMetricsToken(cfg.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("metrics.token_file: %w", err)
		}
		bc.MetricsToken = tok
	}
	if cfg.Listen == "" {
		if bc.MetricsToken == "" {
			log.Warn("/metrics is served on the API listener without authentication; set metrics.listen or metrics.token_file")
		}
		return nil, nil
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen: %w", err)
	}
	bc.MetricsElsewhere = true
	mux := http.NewServeMux()
	mux.Handle("/metrics", broker.MetricsHandler(reg, bc.MetricsToken))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.WithError(err).Error("metrics listener stopped")
		}
	}()
	log.WithField("metrics_addr", "http://"+ln.Addr().String()+"/metrics").Info("metrics on their own listener")
	return srv, nil
}

// serverErrorLog is an http.Server's ErrorLog writing to log at info
// level; the returned func ends its pipe once the server is shut down.
func serverErrorLog(log *logrus.Entry) (*stdlog.Logger, func()) {
	w := log.WriterLevel(logrus.InfoLevel)
	return stdlog.New(w, "", 0), func() { w.Close() }
}
