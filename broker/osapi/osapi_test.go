package osapi

import "testing"

func TestInRange(t *testing.T) {
	tests := []struct {
		name, v string
		want    bool
	}{
		{"min", "2.1", true}, {"inside", "2.10", true}, {"max", "2.60", true},
		{"above", "2.61", false}, {"below", "2.0", false}, {"other major", "3.1", false},
		{"garbage", "banana", false}, {"no minor", "2", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := inRange(tc.v, "2.1", "2.60"); got != tc.want {
				t.Fatalf("inRange(%q) = %v, want %v", tc.v, got, tc.want)
			}
		})
	}
}

func TestParseBool(t *testing.T) {
	for _, tc := range []struct {
		in        string
		value, ok bool
	}{
		{"true", true, true}, {"True", true, true}, {"1", true, true}, {"yes", true, true}, {"ON", true, true}, {"t", true, true},
		{"false", false, true}, {"False", false, true}, {"0", false, true}, {"no", false, true}, {"off", false, true}, {"F", false, true},
		{"", false, false}, {"2", false, false}, {"maybe", false, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if v, ok := ParseBool(tc.in); v != tc.value || ok != tc.ok {
				t.Errorf("ParseBool(%q) = %v, %v; want %v, %v", tc.in, v, ok, tc.value, tc.ok)
			}
		})
	}
}
