package quota_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/registry"
)

// TestSplit: a batch reserved at once becomes one reservation per
// resource, each committed or released on its own; the usage counts
// exactly what was committed, and parts that do not add up are refused.
func TestSplit(t *testing.T) {
	ctx := context.Background()
	p := quota.Scope{Project: "p1"}
	one := quota.Amounts{quota.Instances: 1, quota.Cores: 2}
	tests := []struct {
		name      string
		parts     []quota.Amounts
		commit    []bool
		wantUsed  quota.Amounts
		wantError bool
	}{
		{name: "three, two made", parts: []quota.Amounts{one, one, one}, commit: []bool{true, false, true},
			wantUsed: quota.Amounts{quota.Instances: 2, quota.Cores: 4}},
		{name: "none made", parts: []quota.Amounts{one, one, one}, commit: []bool{false, false, false}, wantUsed: quota.Amounts{}},
		{name: "parts short of the whole", parts: []quota.Amounts{one, one}, wantError: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLedger(registry.NewMemory(), "b", nil)
			batch, err := l.Reserve(ctx, p, quota.Amounts{quota.Instances: 3, quota.Cores: 6}, "batch")
			if err != nil {
				t.Fatal(err)
			}
			whats := make([]string, len(tt.parts))
			parts, err := batch.Split(ctx, tt.parts, whats)
			if tt.wantError {
				if !errors.Is(err, quota.ErrInvalid) {
					t.Fatalf("split = %v, want ErrInvalid", err)
				}
				_ = batch.Release(ctx)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, reserved, _ := l.Usage(ctx, p); reserved[quota.Instances] != 3 {
				t.Fatalf("reserved after the split = %v, want the whole batch", reserved)
			}
			if seen := parts[0].Seen(); seen.Reserved[quota.Instances] != 2 {
				t.Fatalf("a part's snapshot = %+v, want its siblings reserved", seen)
			}
			if err := batch.Release(ctx); err != nil {
				t.Fatal(err) // the batch is done: releasing it does nothing
			}
			for i, part := range parts {
				if tt.commit[i] {
					err = part.Commit(ctx)
				} else {
					err = part.Release(ctx)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			used, reserved, err := l.Usage(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if used[quota.Instances] != tt.wantUsed[quota.Instances] || used[quota.Cores] != tt.wantUsed[quota.Cores] || reserved[quota.Instances] != 0 {
				t.Fatalf("used %v reserved %v, want used %v and nothing reserved", used, reserved, tt.wantUsed)
			}
		})
	}
}
