package deploy

import (
	"slices"
	"testing"

	"github.com/cloudmux/cloudmux/registry/registrytest"
)

// TestRecordsInMemory: with Records running, a project's deployment list
// and Resume's list of all read no Store, show only the project's
// deployments, and follow another replica's creates and changes once the
// watch delivers them; the engine's own writes show at once.
func TestRecordsInMemory(t *testing.T) {
	te := newEnv(t)
	ctx := te.Ctx
	counted := registrytest.NewCountingStore(te.Store)
	a := te.engine("broker-a")
	a.Store = counted
	a.Records = NewRecords(counted, te.Log)
	te.Start(t, a.Records)
	b := te.engine("broker-b") // another replica, reading the Store

	var mine []string
	for _, p := range []string{"p1", "p1", "p2"} {
		d, _, err := a.Create(ctx, "web", owner(p), Spec{Source: webV1})
		if err != nil {
			t.Fatal(err)
		}
		if p == "p1" {
			mine = append(mine, d.ID)
		}
	}
	ids := func(ds []*Deployment) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return out
	}
	tests := []struct {
		name    string
		project string
		want    int
	}{
		{"p1's", "p1", 2},
		{"p2's", "p2", 1},
		{"everyone's (Resume)", "", 3},
		{"no such project", "p3", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counted.Reset()
			ds, err := a.List(ctx, tt.project)
			if err != nil || len(ds) != tt.want {
				t.Fatalf("list = %v, %v; want %d", ids(ds), err, tt.want)
			}
			for _, d := range ds {
				if tt.project != "" && d.Project != tt.project {
					t.Fatalf("%s's list holds %s of %s", tt.project, d.ID, d.Project)
				}
			}
			if n := counted.Reads(); n != 0 {
				t.Fatalf("%d Store reads, want 0", n)
			}
		})
	}
	if got := ids(listOf(t, a, "p1")); !slices.Equal(got, mine) {
		t.Fatalf("p1's list = %v, want %v (by creation)", got, mine)
	}

	// Another replica creates one and deletes another: here once the
	// watch delivers.
	other, _, err := b.Create(ctx, "db", owner("p1"), Spec{Source: webV1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Delete(ctx, mine[0]); err != nil {
		t.Fatal(err)
	}
	_, at, err := te.Store.List(ctx, recordPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Records.mirror.WaitIndex(ctx, at); err != nil {
		t.Fatal(err)
	}
	ds := listOf(t, a, "p1")
	if got := ids(ds); !slices.Equal(got, append(slices.Clone(mine), other.ID)) {
		t.Fatalf("p1's list after b's create = %v", got)
	}
	if ds[0].Goal != "delete" {
		t.Fatalf("b's delete not seen: %+v", ds[0])
	}
}

// listOf is e's list of project, or the test's end.
func listOf(t *testing.T, e *Engine, project string) []*Deployment {
	t.Helper()
	ds, err := e.List(t.Context(), project)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}
