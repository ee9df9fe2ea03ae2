package policy_test

import (
	"context"
	"io/fs"
	"os"
	"testing"

	"github.com/cloudmux/cloudmux/policy"
)

// TestStockRegoTests runs the stock policy's own Rego tests, as
// `opa test policy/stock` would.
func TestStockRegoTests(t *testing.T) {
	results, err := policy.RunTests(context.Background(), policy.Stock())
	if err != nil {
		t.Fatal(err)
	}
	if len(results) == 0 {
		t.Fatal("no Rego tests ran")
	}
	for _, r := range results {
		t.Run(r.Name, func(t *testing.T) {
			if !r.Pass {
				t.Errorf("%s:%d: %s.%s fails: %s", r.File, r.Row, r.Package, r.Name, r.Error)
			}
		})
	}
}

// TestLoadDirMatchesEmbedded: the directory loader reads the stock
// directory as the embedded bundle holds it.
func TestLoadDirMatchesEmbedded(t *testing.T) {
	b, err := policy.LoadDir(os.DirFS("stock"))
	if err != nil {
		t.Fatal(err)
	}
	if b.Hash() != policy.Stock().Hash() {
		t.Fatalf("stock directory hash %s != embedded %s", b.Hash(), policy.Stock().Hash())
	}
	if _, err := fs.Stat(os.DirFS("stock"), "placement_test.rego"); err != nil {
		t.Fatal(err)
	}
	if len(b.Tests) != 1 || len(b.Modules) != 1 {
		t.Fatalf("modules %d, tests %d; want 1 and 1", len(b.Modules), len(b.Tests))
	}
}
