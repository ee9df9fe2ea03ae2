package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry/backup"
)

const stateUsage = `Usage:
  cloudmux state backup  -config FILE -o BACKUP   write the installation's Store (Consul) to BACKUP
  cloudmux state restore -config FILE -i BACKUP   restore BACKUP into the configured, empty Store
  cloudmux state verify  -i BACKUP                check BACKUP is whole and unaltered

The Store is the one the config file names (store.consul: address, key_prefix,
TLS; CONSUL_HTTP_ADDR and CONSUL_HTTP_TOKEN apply as for serve). A backup holds
every key under the key prefix but lease-held locks, read at one index; it
does not hold the credentials key file, nor local-cloud disks under data_dir:
keep those beside it. Restore refuses a store that holds any key; stop every
broker of the installation first, and start them after it succeeds.
`

// runState is `cloudmux state`: backup, restore and verify of the broker's
// durable state. It talks to the Store directly, not to a broker: a backup
// must work while brokers are down, and a restore must happen before any
// starts.
func runState(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, stateUsage)
		return 2
	}
	sub := args[0]
	fs := flag.NewFlagSet("state "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "the brokers' YAML config file (its store section is used)")
	out := fs.String("o", "", "backup: the file to write")
	in := fs.String("i", "", "restore, verify: the backup file to read")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "state %s: unexpected arguments %v\n", sub, fs.Args())
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch sub {
	case "backup":
		if *out == "" {
			fmt.Fprintln(stderr, "state backup: -o BACKUP is required")
			return 2
		}
		return stateBackup(ctx, *configPath, *out, stdout, stderr)
	case "restore":
		if *in == "" {
			fmt.Fprintln(stderr, "state restore: -i BACKUP is required")
			return 2
		}
		return stateRestore(ctx, *configPath, *in, stdout, stderr)
	case "verify":
		if *in == "" {
			fmt.Fprintln(stderr, "state verify: -i BACKUP is required")
			return 2
		}
		f, err := os.Open(*in)
		if err != nil {
			fmt.Fprintf(stderr, "state verify: %v\n", err)
			return 1
		}
		defer f.Close()
		sum, _, err := backup.Read(f)
		if err != nil {
			fmt.Fprintf(stderr, "state verify: %s: %v\n", *in, err)
			return 1
		}
		printSummary(stdout, "verified", *in, sum)
		return 0
	}
	fmt.Fprintf(stderr, "state: unknown subcommand %q\n\n%s", sub, stateUsage)
	return 2
}

// stateConfig loads the config the way serve does and refuses the memory
// store, which lives and dies inside one broker process.
func stateConfig(path string) (Config, error) {
	cfg := defaultConfig()
	if path != "" {
		if err := cfg.loadFile(path); err != nil {
			return Config{}, err
		}
	}
	cfg.applyDefaults()
	cfg.applyEnv(os.Getenv)
	if cfg.Store.Backend != "consul" {
		return Config{}, errors.New("the store is not Consul: a memory store lives inside one broker process and has nothing to back up or restore into (pass the brokers' -config)")
	}
	return cfg, nil
}

func stateBackup(ctx context.Context, configPath, out string, stdout, stderr io.Writer) int {
	cfg, err := stateConfig(configPath)
	if err != nil {
		fmt.Fprintf(stderr, "state backup: %v\n", err)
		return 2
	}
	store, _, err := storeFor(cfg, quietLogger())
	if err != nil {
		fmt.Fprintf(stderr, "state backup: %v\n", err)
		return 1
	}
	// Written beside the target and renamed into place when complete, so a
	// failed or interrupted backup never leaves a partial file under the
	// name an operator would restore from.
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".partial-")
	if err != nil {
		fmt.Fprintf(stderr, "state backup: %v\n", err)
		return 1
	}
	defer os.Remove(tmp.Name())
	sum, err := backup.Save(ctx, store, tmp, version)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), out)
	}
	if err != nil {
		fmt.Fprintf(stderr, "state backup: %v\n", err)
		return 1
	}
	printSummary(stdout, "backed up", out, sum)
	return 0
}

func stateRestore(ctx context.Context, configPath, in string, stdout, stderr io.Writer) int {
	cfg, err := stateConfig(configPath)
	if err != nil {
		fmt.Fprintf(stderr, "state restore: %v\n", err)
		return 2
	}
	f, err := os.Open(in)
	if err != nil {
		fmt.Fprintf(stderr, "state restore: %v\n", err)
		return 1
	}
	defer f.Close()
	store, _, err := storeFor(cfg, quietLogger())
	if err != nil {
		fmt.Fprintf(stderr, "state restore: %v\n", err)
		return 1
	}
	sum, err := backup.Restore(ctx, store, f)
	if err != nil {
		fmt.Fprintf(stderr, "state restore: %s: %v\n", in, err)
		return 1
	}
	printSummary(stdout, "restored", in, sum)
	return 0
}

func printSummary(w io.Writer, what, file string, sum backup.Summary) {
	fmt.Fprintf(w, "%s %s: %d keys, %d bytes of values, store index %d, taken %s by cloudmux %s, sha256 %s",
		what, file, sum.Keys, sum.Bytes, sum.Header.StoreIndex, sum.Header.Created.Format("2006-01-02T15:04:05Z"), sum.Header.Producer, sum.SHA256)
	if sum.SkippedLeased > 0 {
		fmt.Fprintf(w, " (%d lease-held locks left out)", sum.SkippedLeased)
	}
	fmt.Fprintln(w)
}

// quietLogger keeps the Consul client's own logging off a command's output.
func quietLogger() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}
