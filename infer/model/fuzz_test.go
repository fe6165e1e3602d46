package model

import (
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// FuzzDecode: a .iom file is whatever sits under a model base path. Decode
// must refuse anything damaged without a panic or an allocation beyond the
// declared, bounded size; what it accepts must round-trip and predict. With
// fixSum the fuzzer's bytes get a valid checksum, so it explores the layout
// behind the CRC instead of the CRC. Seeds: testdata/fuzz/FuzzDecode (the
// shipped versions among them).
func FuzzDecode(f *testing.F) {
	for v := int64(1); v <= 2; v++ {
		b, err := CTR(v).MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b[:len(b)-4], true)
	}
	f.Fuzz(func(t *testing.T, data []byte, fixSum bool) {
		if fixSum {
			data = binary.LittleEndian.AppendUint32(append([]byte(nil), data...), crc32.ChecksumIEEE(data))
		}
		m, err := Decode(data)
		if err != nil {
			return
		}
		again, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded model does not encode: %v", err)
		}
		m2, err := Decode(again)
		if err != nil || !m.Equal(m2) {
			t.Fatalf("round trip: %v", err)
		}
		const rows = 3
		x := make([]float32, rows*m.InputWidth())
		for i := range x {
			x[i] = float32(i%7) - 3
		}
		if err := m.Predict(make([]float32, rows*m.OutputWidth()), x, rows); err != nil {
			t.Fatalf("accepted model cannot predict: %v", err)
		}
	})
}
