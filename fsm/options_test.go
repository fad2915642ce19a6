package fsm

import (
	"bytes"
	"testing"
)

// The encoder follows Linux's tcp_options_write layout, so a Linux peer's
// SYN and ours are byte-for-byte comparable.
func TestAppendOptionsLinuxLayout(t *testing.T) {
	sack := [4]SACKBlock{{1, 101}, {201, 301}, {401, 501}, {601, 701}}
	tests := []struct {
		name string
		o    Options
		want []byte
		text string
	}{
		{"none", Options{}, nil, ""},
		{"mss", Options{HasMSS: true, MSS: 1460},
			[]byte{2, 4, 0x05, 0xb4}, "mss 1460"},
		{"linux SYN", Options{HasMSS: true, MSS: 1460, SACKPermitted: true, HasTimestamp: true, TSVal: 100, HasWScale: true, WScale: 7},
			[]byte{2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 100, 0, 0, 0, 0, 1, 3, 3, 7},
			"mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7"},
		{"timestamps only", Options{HasTimestamp: true, TSVal: 5, TSEcr: 6},
			[]byte{1, 1, 8, 10, 0, 0, 0, 5, 0, 0, 0, 6}, "nop,nop,TS val 5 ecr 6"},
		{"sack-permitted without timestamps", Options{HasMSS: true, MSS: 536, SACKPermitted: true},
			[]byte{2, 4, 2, 0x18, 1, 1, 4, 2}, "mss 536,nop,nop,sackOK"},
		{"wscale only", Options{HasWScale: true, WScale: 0},
			[]byte{1, 3, 3, 0}, "nop,wscale 0"},
		{"sack two blocks", Options{NumSACK: 2, SACK: sack},
			[]byte{1, 1, 5, 18, 0, 0, 0, 1, 0, 0, 0, 101, 0, 0, 0, 201, 0, 0, 1, 45},
			"nop,nop,sack 1:101 201:301"},
		{"timestamps and three sack blocks fill 40 bytes", Options{HasTimestamp: true, TSVal: 7, TSEcr: 8, NumSACK: 4, SACK: sack},
			[]byte{1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 8, 1, 1, 5, 26,
				0, 0, 0, 1, 0, 0, 0, 101, 0, 0, 0, 201, 0, 0, 1, 45, 0, 0, 1, 145, 0, 0, 1, 245},
			"nop,nop,TS val 7 ecr 8,nop,nop,sack 1:101 201:301 401:501"},
		{"everything leaves room for two blocks", Options{HasMSS: true, MSS: 1, SACKPermitted: true, HasTimestamp: true, HasWScale: true, WScale: 2, NumSACK: 3, SACK: sack},
			[]byte{2, 4, 0, 1, 4, 2, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 3, 2,
				1, 1, 5, 18, 0, 0, 0, 1, 0, 0, 0, 101, 0, 0, 0, 201, 0, 0, 1, 45},
			"mss 1,sackOK,TS val 0 ecr 0,nop,wscale 2,nop,nop,sack 1:101 201:301"},
		{"unknown not encoded", Options{Unknown: 3}, nil, ""},
		{"NumSACK beyond the array is clamped", Options{NumSACK: 200, SACK: sack},
			append([]byte{1, 1, 5, 34}, []byte{0, 0, 0, 1, 0, 0, 0, 101, 0, 0, 0, 201, 0, 0, 1, 45,
				0, 0, 1, 145, 0, 0, 1, 245, 0, 0, 2, 89, 0, 0, 2, 189}...),
			"nop,nop,sack 1:101 201:301 401:501 601:701"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := appendOptions([]byte{0xee}, &tt.o)
			if got[0] != 0xee || !bytes.Equal(got[1:], tt.want) {
				t.Errorf("bytes %v\nwant  %v", got[1:], tt.want)
			}
			if n := tt.o.optionsLen(); n != len(tt.want) {
				t.Errorf("optionsLen = %d, want %d", n, len(tt.want))
			}
			if s := tt.o.String(); s != tt.text {
				t.Errorf("String = %q, want %q", s, tt.text)
			}
		})
	}
}

// Parsing the encoding of every option set gives the set back (with SACK
// blocks beyond the 40-byte space dropped), and String renders the parsed
// value the same as the original.
func TestOptionsParseEncodeAgree(t *testing.T) {
	for mask := range 32 {
		for nsack := range MaxSACKBlocks + 1 {
			o := Options{NumSACK: uint8(nsack)}
			for i := range nsack {
				o.SACK[i] = SACKBlock{Seq(100 * i), Seq(100*i + 50)}
			}
			o.HasMSS, o.MSS = mask&1 != 0, 1220
			o.HasWScale, o.WScale = mask&2 != 0, 3
			o.SACKPermitted = mask&4 != 0
			o.HasTimestamp, o.TSVal, o.TSEcr = mask&8 != 0, 1, 2
			if mask&16 != 0 {
				o.Unknown = 1
			}
			if !o.HasMSS {
				o.MSS = 0
			}
			if !o.HasWScale {
				o.WScale = 0
			}
			if !o.HasTimestamp {
				o.TSVal, o.TSEcr = 0, 0
			}
			b := appendOptions(nil, &o)
			if len(b) > maxOptionLen || len(b)%4 != 0 {
				t.Fatalf("%+v: %d bytes", o, len(b))
			}
			var got Options
			if err := parseOptions(b, &got); err != nil {
				t.Fatalf("%+v: %v", o, err)
			}
			want := o
			want.Unknown = 0
			k := o.sackBlocksToEncode()
			want.NumSACK = uint8(k)
			clear(want.SACK[k:])
			if got != want {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			if got.String() != o.String() {
				t.Errorf("String %q != %q", got.String(), o.String())
			}
		}
	}
}
