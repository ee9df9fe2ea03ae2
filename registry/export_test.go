package registry

// MaxTombstones is maxTombstones, for tests.
const MaxTombstones = maxTombstones

// Tombstones counts the deletions m remembers.
func Tombstones(m *Memory) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.tombstones)
}

// RecentWrites is recentWrites, for tests.
const RecentWrites = recentWrites
