package localcloud

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cloudmux/cloudmux/peers"
)

// The state is a snapshot (state.json) followed by a journal: each save
// appends, as JSON lines, the records changed since the last one (their
// whole saved form, or their deletion) and syncs the journal, so a save
// costs what changed, not the whole cloud: with 1,000 servers on a peer a
// whole-state save marshalled and synced ~1 MB per change. When the
// journal outgrows the snapshot (and at least journalMinCompact), the
// next save writes a whole snapshot naming a new, empty journal instead;
// writing what was appended since costs in proportion to that growth, so
// snapshots stay amortised over the appends they replace.
//
// A change names what it changed (markLocked and the helpers below) in
// the same critical section as the change; saveLocked then waits for a
// write holding it. A record changed but not named would reach the disk
// only with the next snapshot, so the package's tests check after every
// write that the snapshot plus the journal read back equals the records
// in memory (verifyState).

// journalMinCompact is the journal size below which no snapshot is
// written however small the snapshot is.
var journalMinCompact int64 = 1 << 20

// verifyState makes every write read the state files back and compare
// them with the records (tests set it; it costs a whole read per write).
var verifyState = false

// Record kinds as the journal names them.
const (
	recServer  = "server"
	recImage   = "image"
	recKeypair = "keypair"
	recNetwork = "network"
	recSubnet  = "subnet"
	recPort    = "port"
	recVolume  = "volume"
	recGroup   = "security_group"
	// recRouter and recFloatingIP are routers.go's and floatingips.go's.
	recRouter     = "router"
	recFloatingIP = "floating_ip"
)

// recordKey names one record: its kind and ID (a keypair's name).
type recordKey struct{ kind, id string }

// journalLine is one line of the journal: one save, applied whole or not
// at all (a server's delete changes its ports and volumes too; a torn
// line drops the whole save, never part of it).
type journalLine struct {
	Records []journalEntry `json:"records"`
}

// journalEntry is one record in a journal line: its saved form, or its
// deletion.
type journalEntry struct {
	Kind    string          `json:"kind"`
	ID      string          `json:"id"`
	Deleted bool            `json:"deleted,omitempty"`
	Record  json.RawMessage `json:"record,omitempty"`
}

// markLocked names records a change touched; the next write journals them
// as they are then (or their deletion, if gone). Callers hold c.mu.
func (c *Cloud) markLocked(kind string, ids ...string) {
	for _, id := range ids {
		c.dirty[recordKey{kind, id}] = struct{}{}
	}
}

// markServerLocked names a server and what its saved form derives from or
// shares with it: its ports and its attached volumes.
func (c *Cloud) markServerLocked(s *server) {
	c.markLocked(recServer, s.ID)
	c.markLocked(recPort, s.ports...)
	for id := range s.ownPorts {
		c.markLocked(recPort, id)
	}
	c.markLocked(recVolume, s.Volumes...)
}

// markAllLocked makes the next write a whole snapshot: for changes too
// broad to name (Recover's reconciliation).
func (c *Cloud) markAllLocked() { c.compactNext = true }

// savedRecordLocked is the saved form of the record k names, or nil when
// it is gone.
func (c *Cloud) savedRecordLocked(k recordKey) any {
	switch k.kind {
	case recServer:
		if s := c.servers[k.id]; s != nil {
			return c.savedServerLocked(s)
		}
	case recImage:
		if img := c.images[k.id]; img != nil {
			return savedImage{Image: img.view(), WantMD5: img.wantMD5}
		}
	case recKeypair:
		if kp := c.keypairs[k.id]; kp != nil {
			return *kp
		}
	case recNetwork:
		if n := c.networks[k.id]; n != nil {
			return savedNetwork{Network: n.view(), Deleting: n.deleting}
		}
	case recSubnet:
		if sn := c.subnets[k.id]; sn != nil {
			return sn.view()
		}
	case recPort:
		if p := c.ports[k.id]; p != nil {
			return portView(p)
		}
	case recVolume:
		if v := c.volumes[k.id]; v != nil {
			return v.saved()
		}
	case recGroup:
		if g := c.groups[k.id]; g != nil {
			return groupView(g)
		}
	case recRouter:
		if r := c.routers[k.id]; r != nil {
			return r.saved()
		}
	case recFloatingIP:
		if f := c.fips[k.id]; f != nil {
			return f.saved()
		}
	}
	return nil
}

// journalLinesLocked encodes the named records as one journal line and
// forgets the names.
func (c *Cloud) journalLinesLocked() ([]byte, error) {
	keys := make([]recordKey, 0, len(c.dirty))
	for k := range c.dirty {
		keys = append(keys, k)
	}
	clear(c.dirty)
	slices.SortFunc(keys, func(a, b recordKey) int { return strings.Compare(a.kind+"/"+a.id, b.kind+"/"+b.id) })
	line := journalLine{Records: make([]journalEntry, 0, len(keys))}
	for _, k := range keys {
		e := journalEntry{Kind: k.kind, ID: k.id, Deleted: true}
		if rec := c.savedRecordLocked(k); rec != nil {
			b, err := json.Marshal(rec)
			if err != nil {
				return nil, err
			}
			e.Deleted, e.Record = false, b
		}
		line.Records = append(line.Records, e)
	}
	b, err := json.Marshal(line)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// journalPath is the path of the journal file named name.
func (c *Cloud) journalPath(name string) string { return filepath.Join(c.cfg.DataDir, name) }

// appendJournal appends b to the open journal and syncs it.
func (c *Cloud) appendJournal(f *os.File, b []byte) error {
	if _, err := f.Write(b); err != nil {
		return err
	}
	return f.Sync()
}

// compact writes st as the new snapshot, naming a new empty journal, and
// returns that journal open for appending. Order: the new journal exists
// (and its directory entry is synced) before a snapshot names it; the old
// journal goes only after the new snapshot's rename is synced, so a crash
// at any point leaves a snapshot and the journal it names.
//
// synced is false when the renamed snapshot's directory entry could not
// be synced: it and the new journal are in use, but a machine crash may
// bring back the old pair, so the caller writes a snapshot again next.
func (c *Cloud) compact(st savedState, seq uint64) (f *os.File, size int64, synced bool, err error) {
	name := fmt.Sprintf("%s.%d", journalFileName, seq)
	f, err = os.OpenFile(c.journalPath(name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return nil, 0, false, err
	}
	fail := func(err error) (*os.File, int64, bool, error) {
		_ = f.Close()
		_ = os.Remove(c.journalPath(name))
		return nil, 0, false, err
	}
	if err := syncDir(c.cfg.DataDir); err != nil {
		return fail(err)
	}
	st.Journal = name
	b, err := json.Marshal(st)
	if err != nil {
		return fail(err)
	}
	if err := c.writeState(b); err != nil {
		return fail(err)
	}
	if err := syncDir(c.cfg.DataDir); err != nil {
		// The snapshot may not survive a machine crash yet: keep the
		// old journals, which a load sorts out by the name it reads.
		c.log.WithError(err).Error("syncing the data directory after a new state snapshot failed; writing another")
		return f, int64(len(b)), false, nil
	}
	c.removeStaleJournals(name)
	return f, int64(len(b)), true, nil
}

// removeStaleJournals deletes the journal files other than keep.
func (c *Cloud) removeStaleJournals(keep string) {
	names, _ := filepath.Glob(c.journalPath(journalFileName + ".*"))
	for _, p := range names {
		if filepath.Base(p) != keep {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				c.log.WithError(err).WithField("file", p).Warn("removing an old state journal failed")
			}
		}
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// journalFileName is the journals' name in Config.DataDir, before the
// sequence number.
const journalFileName = "state.journal"

// readState reads the snapshot and the journal it names into one state:
// what a load starts from. good is the journal's length up to its last
// whole line: a crash mid-append leaves a torn last line, which is
// dropped (its save never returned).
func readState(dir string) (st savedState, good int64, err error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFileName))
	if err != nil {
		return savedState{}, 0, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return savedState{}, 0, fmt.Errorf("%s is not a state file: %w", filepath.Join(dir, stateFileName), err)
	}
	switch {
	case st.Version == 1 && st.Journal == "":
		return st, 0, nil // written before journals: the whole state
	case st.Version == 1:
		// Development builds of 2026-12-07 wrote journals of one record a
		// line under version 1: not a release's format.
		return savedState{}, 0, fmt.Errorf("%s is a version 1 state with a journal, written by a development build this cloudmux does not read; restore a backup taken before that build ran", filepath.Join(dir, stateFileName))
	case st.Version != stateVersion:
		return savedState{}, 0, fmt.Errorf("%s has version %d; this cloudmux reads versions 1 and %d", filepath.Join(dir, stateFileName), st.Version, stateVersion)
	case st.Journal == "":
		return savedState{}, 0, fmt.Errorf("%s names no journal", filepath.Join(dir, stateFileName))
	}
	path := filepath.Join(dir, st.Journal)
	jb, err := os.ReadFile(path)
	if err != nil {
		// compact syncs a new journal's directory entry before any
		// snapshot names it: a missing one is damage from outside (a
		// backup taken live, a file removed), and starting without it
		// would drop the changes it held.
		return savedState{}, 0, fmt.Errorf("%s names journal %s, which cannot be read (restore it with the snapshot): %v", filepath.Join(dir, stateFileName), st.Journal, err) // %v: not fs.ErrNotExist, which means "no state"
	}
	sm := mapsOf(st)
	for rest := jb; len(rest) > 0; {
		nl := bytes.IndexByte(rest, '\n')
		if nl < 0 {
			break // no newline: a torn last line, whose save never returned
		}
		var line journalLine
		if err := json.Unmarshal(rest[:nl], &line); err != nil {
			if nl == len(rest)-1 {
				break // a torn last line
			}
			return savedState{}, 0, fmt.Errorf("%s: line at byte %d: %w", path, good, err)
		}
		for _, e := range line.Records {
			if err := sm.apply(e); err != nil {
				return savedState{}, 0, fmt.Errorf("%s: line at byte %d: %w", path, good, err)
			}
		}
		good += int64(nl) + 1
		rest = rest[nl+1:]
	}
	return sm.state(st), good, nil
}

// stateMaps is a state keyed by record, for applying a journal.
type stateMaps struct {
	servers  map[string]savedServer
	images   map[string]savedImage
	keypairs map[string]peers.Keypair
	networks map[string]savedNetwork
	subnets  map[string]peers.Subnet
	ports    map[string]peers.Port
	volumes  map[string]savedVolume
	groups   map[string]peers.SecurityGroup
	routers  map[string]savedRouter
	fips     map[string]savedFloatingIP
}

func mapsOf(st savedState) stateMaps {
	return stateMaps{
		servers:  keyed(st.Servers, func(s savedServer) string { return s.Server.ID }),
		images:   keyed(st.Images, func(i savedImage) string { return i.Image.ID }),
		keypairs: keyed(st.Keypairs, func(k peers.Keypair) string { return k.Name }),
		networks: keyed(st.Networks, func(n savedNetwork) string { return n.Network.ID }),
		subnets:  keyed(st.Subnets, func(s peers.Subnet) string { return s.ID }),
		ports:    keyed(st.Ports, func(p peers.Port) string { return p.ID }),
		volumes:  keyed(st.Volumes, func(v savedVolume) string { return v.Volume.ID }),
		groups:   keyed(st.SecurityGroups, func(g peers.SecurityGroup) string { return g.ID }),
		routers:  keyed(st.Routers, func(r savedRouter) string { return r.Router.ID }),
		fips:     keyed(st.FloatingIPs, func(f savedFloatingIP) string { return f.FloatingIP.ID }),
	}
}

func keyed[T any](list []T, id func(T) string) map[string]T {
	m := make(map[string]T, len(list))
	for _, v := range list {
		m[id(v)] = v
	}
	return m
}

// apply sets or deletes the record e names.
func (sm stateMaps) apply(e journalEntry) error {
	switch e.Kind {
	case recServer:
		return applyTo(sm.servers, e)
	case recImage:
		return applyTo(sm.images, e)
	case recKeypair:
		return applyTo(sm.keypairs, e)
	case recNetwork:
		return applyTo(sm.networks, e)
	case recSubnet:
		return applyTo(sm.subnets, e)
	case recPort:
		return applyTo(sm.ports, e)
	case recVolume:
		return applyTo(sm.volumes, e)
	case recGroup:
		return applyTo(sm.groups, e)
	case recRouter:
		return applyTo(sm.routers, e)
	case recFloatingIP:
		return applyTo(sm.fips, e)
	}
	return fmt.Errorf("unknown record kind %q", e.Kind)
}

func applyTo[T any](m map[string]T, e journalEntry) error {
	if e.Deleted {
		delete(m, e.ID)
		return nil
	}
	var v T
	if err := json.Unmarshal(e.Record, &v); err != nil {
		return fmt.Errorf("%s %s: %w", e.Kind, e.ID, err)
	}
	m[e.ID] = v
	return nil
}

// state turns the maps back into a sorted state, with base's header.
func (sm stateMaps) state(base savedState) savedState {
	st := savedState{Version: base.Version, SavedAt: base.SavedAt, Journal: base.Journal}
	st.Servers = sortedValues(sm.servers)
	st.Images = sortedValues(sm.images)
	st.Keypairs = sortedValues(sm.keypairs)
	st.Networks = sortedValues(sm.networks)
	st.Subnets = sortedValues(sm.subnets)
	st.Ports = sortedValues(sm.ports)
	st.Volumes = sortedValues(sm.volumes)
	st.SecurityGroups = sortedValues(sm.groups)
	st.Routers = sortedValues(sm.routers)
	st.FloatingIPs = sortedValues(sm.fips)
	return st
}

func sortedValues[T any](m map[string]T) []T {
	keys := slices.Sorted(maps.Keys(m))
	out := make([]T, 0, len(keys))
	for _, k := range keys {
		out = append(out, m[k])
	}
	return out
}

// verifyStateLocked reads the state files back and panics when a record
// there differs from the one in memory, unless a change not yet written
// names it: a change that did not name what it changed (verifyState).
func (c *Cloud) verifyStateLocked() {
	disk, _, err := readState(c.cfg.DataDir)
	if err != nil {
		panic(fmt.Sprintf("localcloud: verifying the state: %v", err))
	}
	onDisk, inMemory := recordsOf(disk), recordsOf(c.snapshotLocked())
	var bad []string
	for k := range maps.Keys(onDisk) {
		if _, ok := inMemory[k]; !ok {
			inMemory[k] = ""
		}
	}
	for k, mem := range inMemory {
		if _, pending := c.dirty[k]; pending || onDisk[k] == mem {
			continue
		}
		bad = append(bad, fmt.Sprintf("%s %s:\n  disk:   %s\n  memory: %s", k.kind, k.id, onDisk[k], mem))
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		panic("localcloud: records changed without being named for the journal:\n" + strings.Join(bad, "\n"))
	}
}

// recordsOf encodes every record of st by key.
func recordsOf(st savedState) map[recordKey]string {
	out := map[recordKey]string{}
	add := func(kind, id string, v any) {
		b, _ := json.Marshal(v)
		out[recordKey{kind, id}] = string(b)
	}
	for _, r := range st.Servers {
		add(recServer, r.Server.ID, r)
	}
	for _, r := range st.Images {
		add(recImage, r.Image.ID, r)
	}
	for _, r := range st.Keypairs {
		add(recKeypair, r.Name, r)
	}
	for _, r := range st.Networks {
		add(recNetwork, r.Network.ID, r)
	}
	for _, r := range st.Subnets {
		add(recSubnet, r.ID, r)
	}
	for _, r := range st.Ports {
		add(recPort, r.ID, r)
	}
	for _, r := range st.Volumes {
		add(recVolume, r.Volume.ID, r)
	}
	for _, r := range st.SecurityGroups {
		add(recGroup, r.ID, r)
	}
	for _, r := range st.Routers {
		add(recRouter, r.Router.ID, r)
	}
	for _, r := range st.FloatingIPs {
		add(recFloatingIP, r.FloatingIP.ID, r)
	}
	return out
}
