package localcloud_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/localcloud/fake"
	"github.com/cloudmux/cloudmux/peers"
)

// Environment of the crash test's child process.
const (
	crashDirEnv  = "CLOUDMUX_OBJECT_CRASH_DIR"
	crashStepEnv = "CLOUDMUX_OBJECT_CRASH_STEP"
)

// crashConfig is the config parent and child open the data directory with.
func crashConfig(dir string) localcloud.Config {
	cfg := localcloud.DevDefaults(dir)
	cfg.Hosts = []localcloud.HostConfig{{Name: "host-a", URI: "fake://a", VCPUs: 16, RAMMiB: 32768, DiskGiB: 500}}
	return cfg
}

// crashBodies are the object's bytes before and during the crash: the
// new one is larger than a copy buffer, so the child is killed with part
// of it on disk.
var crashOld, crashNew = bytes.Repeat([]byte("old object "), 50_000), bytes.Repeat([]byte("NEW OBJECT "), 100_000)

// TestObjectCrashMidPut kills (SIGKILL) a process in the middle of a PUT
// that replaces an object: while the bytes stream in, after they are
// synced, and after the record is renamed into place. A new process over
// the same data directory finds the previous object whole in the first two
// cases and the new one whole in the last, and no leftover files.
func TestObjectCrashMidPut(t *testing.T) {
	tests := []struct {
		step string
		want []byte
	}{
		{"mid-stream", crashOld},
		{"data-synced", crashOld},
		{"record-renamed", crashNew},
	}
	for _, tc := range tests {
		t.Run(tc.step, func(t *testing.T) {
			dir := t.TempDir()
			cfg := crashConfig(dir)
			c, err := localcloud.New(cfg, fake.New(cfg.Hosts...), testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.CreateContainer(t.Context(), "ctr"); err != nil {
				t.Fatal(err)
			}
			if _, err := c.PutObject(t.Context(), "ctr", "obj", bytes.NewReader(crashOld), peers.ObjectSpec{Size: int64(len(crashOld))}); err != nil {
				t.Fatal(err)
			}
			_ = c.Close()
			files := objectFiles(t, cfg)

			child := exec.Command(os.Args[0], "-test.run=^TestObjectCrashChild$", "-test.v")
			child.Env = append(os.Environ(), crashDirEnv+"="+dir, crashStepEnv+"="+tc.step)
			out, err := child.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			child.Stderr = &stderr
			if err := child.Start(); err != nil {
				t.Fatal(err)
			}
			// The child says where it is, then waits to be killed.
			lines := bufio.NewScanner(out)
			reached := false
			for lines.Scan() {
				if lines.Text() == "crash-point "+tc.step {
					reached = true
					break
				}
			}
			_ = child.Process.Kill()
			_ = child.Wait()
			if !reached {
				t.Fatalf("the child never reached %s; its stderr:\n%s", tc.step, stderr.String())
			}

			c2, err := localcloud.New(cfg, fake.New(cfg.Hosts...), testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			defer c2.Close()
			got, err := readObject(c2, "ctr", "obj", nil)
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("after a crash at %s: %d bytes (%.20q...), %v; want the %d bytes of %.20q...", tc.step, len(got), got, err, len(tc.want), tc.want)
			}
			// Exactly one record and one data file, as before the crash
			// (the data file's random name aside).
			after := objectFiles(t, cfg)
			if len(after) != len(files) || countSuffix(after, ".data") != 1 || countSuffix(after, ".meta") != 1 {
				t.Fatalf("files after recovery:\n%q\nbefore the crash:\n%q", after, files)
			}
		})
	}
}

func countSuffix(names []string, suffix string) int {
	n := 0
	for _, s := range names {
		if strings.HasSuffix(s, suffix) {
			n++
		}
	}
	return n
}

// TestObjectCrashChild is TestObjectCrashMidPut's child process: it
// replaces the object and stops at the step named in its environment,
// printing "crash-point <step>", until it is killed.
func TestObjectCrashChild(t *testing.T) {
	dir, step := os.Getenv(crashDirEnv), os.Getenv(crashStepEnv)
	if dir == "" {
		t.Skip("the child of TestObjectCrashMidPut; runs only from it")
	}
	stop := func() {
		fmt.Printf("crash-point %s\n", step)
		select {} // until SIGKILL
	}
	localcloud.SetObjectCrashHook(t, func(at string) {
		if at == step {
			stop()
		}
	})
	cfg := crashConfig(dir)
	c, err := localcloud.New(cfg, fake.New(cfg.Hosts...), nil)
	if err != nil {
		t.Fatal(err)
	}
	var data io.Reader = bytes.NewReader(crashNew)
	if step == "mid-stream" {
		half := len(crashNew) / 2
		data = io.MultiReader(bytes.NewReader(crashNew[:half]), readerFunc(func([]byte) (int, error) {
			stop()
			return 0, nil
		}))
	}
	_, err = c.PutObject(context.Background(), "ctr", "obj", data, peers.ObjectSpec{Size: int64(len(crashNew))})
	t.Fatalf("PutObject returned (%v) instead of stopping at %s", err, step)
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
