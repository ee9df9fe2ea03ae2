package localcloud_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/localcloud/fake"
	"github.com/cloudmux/cloudmux/localcloud/localcloudtest"
	"github.com/cloudmux/cloudmux/peers"
)

// journalOf returns the journal file state.json names.
func journalOf(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct{ Journal string }
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if st.Journal == "" {
		t.Fatal("state.json names no journal")
	}
	return st.Journal
}

func keypairNames(t *testing.T, c *localcloud.Cloud) map[string]bool {
	t.Helper()
	kps, err := c.ListKeypairs(t.Context(), peers.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, kp := range kps {
		out[kp.Name] = true
	}
	return out
}

// TestJournalTornTail: a crash mid-append leaves a torn last line; the
// next cloud loads everything before it, and its own appends after the
// cut are read back by the one after.
func TestJournalTornTail(t *testing.T) {
	cfg, drv, c1, seeded := crashable(t)
	w := localcloudtest.Populate(t, c1, seeded, "42", true, fastPoll)
	localcloud.Halt(c1)
	f, err := os.OpenFile(filepath.Join(cfg.DataDir, journalOf(t, cfg.DataDir)), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"kind":"server","id":"torn","rec`); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()

	c2, _ := reopen(t, cfg, drv)
	w.Check(t, c2)
	if _, err := c2.CreateKeypair(t.Context(), peers.KeypairSpec{Name: "after-the-tear", Project: "p"}); err != nil {
		t.Fatal(err)
	}
	localcloud.Halt(c2)
	c3, _ := reopen(t, cfg, drv)
	if !keypairNames(t, c3)["after-the-tear"] {
		t.Fatal("a keypair written after the torn line was lost")
	}
}

// TestJournalCompacts: once the journal outgrows the snapshot, a save
// writes a new snapshot naming a new journal and removes the old one;
// what was saved survives either way.
func TestJournalCompacts(t *testing.T) {
	localcloud.SetJournalMinCompact(t, 1)
	cfg, drv, c1, _ := crashable(t)
	first := journalOf(t, cfg.DataDir)
	for i := range 12 {
		name := "kp-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		if _, err := c1.CreateKeypair(t.Context(), peers.KeypairSpec{Name: name, Project: "p"}); err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			if err := c1.DeleteKeypair(t.Context(), name); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := keypairNames(t, c1)
	localcloud.Halt(c1)
	now := journalOf(t, cfg.DataDir)
	if now == first {
		t.Fatalf("still journal %s after 18 saves with a 1-byte threshold", now)
	}
	journals, _ := filepath.Glob(filepath.Join(cfg.DataDir, "state.journal.*"))
	if len(journals) != 1 || filepath.Base(journals[0]) != now {
		t.Fatalf("journal files %v, want only %s", journals, now)
	}
	c2, _ := reopen(t, cfg, drv)
	if got := keypairNames(t, c2); len(got) != len(want) || len(got) != 6 {
		t.Fatalf("keypairs after reopen %v, want %v", got, want)
	}
}

// TestJournalCorruptLineRefused: a line that is not the last and cannot be
// read is damage, not a crash's tear: New refuses rather than load a
// state missing changes.
func TestJournalCorruptLineRefused(t *testing.T) {
	cfg, _, c1, _ := crashable(t)
	localcloud.Halt(c1)
	path := filepath.Join(cfg.DataDir, journalOf(t, cfg.DataDir))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append([]byte("{garbage\n"), b...), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := localcloud.New(cfg, fake.New(cfg.Hosts...), testLogger(t)); err == nil {
		t.Fatal("New over a journal with a corrupt line succeeded")
	}
}

// TestStateWithoutJournal: a state file written before journals (no
// "journal" field) loads, and the first save writes a snapshot naming one.
func TestStateWithoutJournal(t *testing.T) {
	cfg := oneHost(t)
	old := `{"version":1,"saved_at":"2026-01-01T00:00:00Z","keypairs":[{"name":"old","project":"p","type":"ssh",` +
		`"public_key":"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGmYDGw1gpQ0o1jUe0ViXJmWnqhWQ8g4oR2xg+0RjYe1 x","fingerprint":"f"}]}`
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "state.json"), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	drv := fake.New(cfg.Hosts...)
	c1, err := localcloud.New(cfg, drv, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if !keypairNames(t, c1)["old"] {
		t.Fatal("the old state's keypair is missing")
	}
	if _, err := c1.CreateKeypair(t.Context(), peers.KeypairSpec{Name: "new", Project: "p"}); err != nil {
		t.Fatal(err)
	}
	localcloud.Halt(c1)
	journalOf(t, cfg.DataDir)
	c2, _ := reopen(t, cfg, drv)
	if got := keypairNames(t, c2); !got["old"] || !got["new"] {
		t.Fatalf("keypairs after reopen %v", got)
	}
}

// TestJournalTornSaveDropsWhole: one save is one journal line, so a tear
// inside it drops the whole save: a deleted server's volume is not left
// in-use by a server that is gone.
func TestJournalTornSaveDropsWhole(t *testing.T) {
	cfg, drv, c1, _ := crashable(t)
	if _, err := c1.CreateKeypair(t.Context(), peers.KeypairSpec{Name: "one", Project: "p"}); err != nil {
		t.Fatal(err)
	}
	localcloud.Halt(c1)
	path := filepath.Join(cfg.DataDir, journalOf(t, cfg.DataDir))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A save of two records, torn halfway: neither record may load.
	save := `{"records":[{"kind":"keypair","id":"torn-a","record":{"name":"torn-a","project":"p","type":"ssh","public_key":"k","fingerprint":"f"}},` +
		`{"kind":"keypair","id":"torn-b","record":{"name":"torn-b","project":"p","type":"ssh","public_key":"k","fingerprint":"f"}}]}`
	if err := os.WriteFile(path, append(b, save[:len(save)/2+40]...), 0o600); err != nil {
		t.Fatal(err)
	}
	c2, _ := reopen(t, cfg, drv)
	got := keypairNames(t, c2)
	if !got["one"] || got["torn-a"] || got["torn-b"] {
		t.Fatalf("keypairs %v: want one, and neither half of the torn save", got)
	}
}

// TestJournalMissingRefused: a snapshot naming a journal that is gone
// (a live backup that missed it) stops New rather than start without the
// changes it held.
func TestJournalMissingRefused(t *testing.T) {
	cfg, _, c1, _ := crashable(t)
	localcloud.Halt(c1)
	if err := os.Remove(filepath.Join(cfg.DataDir, journalOf(t, cfg.DataDir))); err != nil {
		t.Fatal(err)
	}
	if _, err := localcloud.New(cfg, fake.New(cfg.Hosts...), testLogger(t)); err == nil {
		t.Fatal("New without the journal the snapshot names succeeded")
	}
}

// TestNoWriteAfterClose: work finishing after Close changes memory only;
// the data directory, which another cloud may own by then, is untouched.
func TestNoWriteAfterClose(t *testing.T) {
	cfg, _, c1, _ := crashable(t)
	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}
	before, _ := filepath.Glob(filepath.Join(cfg.DataDir, "state*"))
	localcloud.SaveAfterClose(c1)
	after, _ := filepath.Glob(filepath.Join(cfg.DataDir, "state*"))
	if strings.Join(before, " ") != strings.Join(after, " ") {
		t.Fatalf("files %v after a save past Close, were %v", after, before)
	}
}
