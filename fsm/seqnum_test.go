package fsm

import "testing"

func TestSeqCompareWraps(t *testing.T) {
	tests := []struct {
		a, b             Seq
		less, lessEq, gt bool
	}{
		{1, 2, true, true, false},
		{2, 1, false, false, true},
		{5, 5, false, true, false},
		{0xffffffff, 0, true, true, false}, // 2^32-1 precedes 0 after the wrap
		{0, 0xffffffff, false, false, true},
		{0xfffffff0, 0x10, true, true, false},
		{0x7fffffff, 0, false, false, true},
	}
	for _, tt := range tests {
		if got := tt.a.LessThan(tt.b); got != tt.less {
			t.Errorf("%d.LessThan(%d) = %v, want %v", tt.a, tt.b, got, tt.less)
		}
		if got := tt.a.LessEq(tt.b); got != tt.lessEq {
			t.Errorf("%d.LessEq(%d) = %v, want %v", tt.a, tt.b, got, tt.lessEq)
		}
		if got := tt.a.GreaterThan(tt.b); got != tt.gt {
			t.Errorf("%d.GreaterThan(%d) = %v, want %v", tt.a, tt.b, got, tt.gt)
		}
	}
}

func TestSeqWindow(t *testing.T) {
	tests := []struct {
		s, start Seq
		size     Size
		want     bool
	}{
		{10, 10, 5, true},
		{14, 10, 5, true},
		{15, 10, 5, false},
		{9, 10, 5, false},
		{10, 10, 0, false},
		{2, 0xfffffffe, 8, true}, // window straddles 2^32
		{0xfffffffe, 0xfffffffe, 8, true},
		{6, 0xfffffffe, 8, false},
	}
	for _, tt := range tests {
		if got := tt.s.InWindow(tt.start, tt.size); got != tt.want {
			t.Errorf("%d.InWindow(%d, %d) = %v, want %v", tt.s, tt.start, tt.size, got, tt.want)
		}
	}
	if d := Seq(3).Sub(0xfffffffe); d != 5 {
		t.Errorf("Sub across wrap = %d, want 5", d)
	}
	if s := Seq(0xfffffffe).Add(5); s != 3 {
		t.Errorf("Add across wrap = %d, want 3", s)
	}
}
