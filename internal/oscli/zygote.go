package oscli

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

//go:embed zygote.py
var zygoteSource []byte

// zygoteReady bounds the zygote's start (its imports and one warm-up
// command, a few seconds; much more on a loaded machine).
const zygoteReady = 3 * time.Minute

// zygote is the running zygote.py of one CLI.
type zygote struct {
	sock string
	// stdin is never closed: the zygote exits when the test binary does.
	stdin io.WriteCloser
}

// started is a CLI's zygote, started once per test binary.
type started struct {
	once sync.Once
	z    *zygote
	err  error
	note sync.Once
}

var (
	zygotesMu sync.Mutex
	zygotes   = map[string]*started{} // by CLI path
)

// zygoteFor returns the zygote serving the CLI at path (openstack, aws
// or swift, by its name), or nil when commands must run as their own
// processes (CLOUDMUX_OSCLI=exec, another CLI, a CLI that is not a
// Python script, a zygote that could not start).
func zygoteFor(t testing.TB, path string) *zygote {
	t.Helper()
	program := filepath.Base(path)
	if os.Getenv("CLOUDMUX_OSCLI") == "exec" || (program != "openstack" && program != "aws" && program != "swift") {
		return nil
	}
	zygotesMu.Lock()
	st := zygotes[path]
	if st == nil {
		st = &started{}
		zygotes[path] = st
	}
	zygotesMu.Unlock()
	st.once.Do(func() { st.z, st.err = startZygote(path, program) })
	if st.err != nil {
		st.note.Do(func() { t.Logf("%s commands run as their own processes: %v", program, st.err) })
		return nil
	}
	return st.z
}

// interpreter is the Python of the CLI script at path (its #! line).
func interpreter(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	fields := strings.Fields(strings.TrimPrefix(line, "#!"))
	if !strings.HasPrefix(line, "#!") || len(fields) != 1 || !strings.Contains(filepath.Base(fields[0]), "python") {
		return "", fmt.Errorf("%s is not a Python script (%q)", path, strings.TrimSpace(line))
	}
	return fields[0], nil
}

func startZygote(cli, program string) (*zygote, error) {
	python, err := interpreter(cli)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "cloudmux-oscli-")
	if err != nil {
		return nil, err
	}
	script, home := filepath.Join(dir, "zygote.py"), filepath.Join(dir, "home")
	if err := os.WriteFile(script, zygoteSource, 0o600); err != nil {
		return nil, err
	}
	// The CLI reads its config directories from HOME when imported: an
	// empty one, as the tests give each command.
	if err := os.Mkdir(home, 0o700); err != nil {
		return nil, err
	}
	z := &zygote{sock: filepath.Join(dir, "sock")}
	cmd := exec.Command(python, script, z.sock, program)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if z.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("said %q", line)
		}
		ready <- err
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case err = <-ready:
	case <-time.After(zygoteReady):
		err = errors.New("not ready in time")
	}
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("the zygote did not start: %v: %s", err, stderr.String())
	}
	go func() {
		_ = cmd.Wait()
		_ = os.RemoveAll(dir)
	}()
	return z, nil
}

// run runs one command in a child of the zygote: its combined output and
// exit status.
func (z *zygote) run(dir string, env, args []string) (string, int, error) {
	out, _, code, err := z.runSplit(dir, env, args, false)
	return out, code, err
}

// runSplit runs one command in a child of the zygote: its stdout and
// stderr (with split; else both are in stdout, as one pipe would have
// them) and exit status.
func (z *zygote) runSplit(dir string, env, args []string, split bool) (stdout, stderr string, code int, err error) {
	if dir == "" {
		if dir, err = os.Getwd(); err != nil {
			return "", "", 0, err
		}
	}
	req, err := json.Marshal(struct {
		Args  []string `json:"args"`
		Env   []string `json:"env"`
		Dir   string   `json:"dir"`
		Split bool     `json:"split"`
	}{args, env, dir, split})
	if err != nil {
		return "", "", 0, err
	}
	conn, err := net.Dial("unix", z.sock)
	if err != nil {
		return "", "", 0, err
	}
	defer conn.Close()
	frame := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(req)), uint32(len(req)))
	if _, err := conn.Write(append(frame, req...)); err != nil {
		return "", "", 0, err
	}
	answer, err := io.ReadAll(conn)
	if err != nil {
		return "", "", 0, err
	}
	if len(answer) < 8 {
		return "", "", 0, fmt.Errorf("the command's child ended without an exit status (%q)", answer)
	}
	code = int(binary.BigEndian.Uint32(answer[:4]))
	n := int(binary.BigEndian.Uint32(answer[4:8]))
	if n > len(answer)-8 {
		return "", "", 0, fmt.Errorf("the command's child sent %d of %d bytes of output", len(answer)-8, n)
	}
	return string(answer[8 : 8+n]), string(answer[8+n:]), code, nil
}
