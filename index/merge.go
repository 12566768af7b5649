package index

import (
	"encoding/binary"
	"io"

	"github.com/cockroachdb/pebble/v2"
)

// Merge operands. A counter's value is itself an operand, so merging is
// associative and commutative: concurrent batches add to a counter without
// reading it, and no lock is needed.
const (
	// mergeSum: zig-zag varints, summed element-wise.
	mergeSum byte = 1
	// mergeMax: one uvarint; the largest wins.
	mergeMax byte = 2
)

// mergerName is stored by Pebble; opening with another name fails. Part of
// the index format.
const mergerName = "cairn.merge.v1"

var merger = &pebble.Merger{
	Name: mergerName,
	Merge: func(key, value []byte) (pebble.ValueMerger, error) {
		m := &valueMerger{}
		if err := m.add(value); err != nil {
			return nil, err
		}
		return m, nil
	},
}

type valueMerger struct {
	tag  byte
	sums []int64
	max  uint64
}

func (m *valueMerger) MergeNewer(value []byte) error { return m.add(value) }
func (m *valueMerger) MergeOlder(value []byte) error { return m.add(value) }

func (m *valueMerger) add(value []byte) error {
	if len(value) == 0 {
		return corruptf("empty merge operand")
	}
	tag, rest := value[0], value[1:]
	if m.tag == 0 {
		m.tag = tag
	} else if m.tag != tag {
		return corruptf("merge operands of kinds %d and %d", m.tag, tag)
	}
	switch tag {
	case mergeSum:
		for i := 0; len(rest) > 0; i++ {
			v, n := binary.Varint(rest)
			if n <= 0 {
				return corruptf("bad sum operand")
			}
			rest = rest[n:]
			if i == len(m.sums) {
				m.sums = append(m.sums, 0)
			}
			m.sums[i] += v
		}
	case mergeMax:
		v, n := binary.Uvarint(rest)
		if n <= 0 || n != len(rest) {
			return corruptf("bad max operand")
		}
		m.max = max(m.max, v)
	default:
		return corruptf("unknown merge operand kind %d", tag)
	}
	return nil
}

func (m *valueMerger) Finish(includesBase bool) ([]byte, io.Closer, error) {
	if m.tag == mergeMax {
		return maxOperand(m.max), nil, nil
	}
	return sumOperand(m.sums...), nil, nil
}

func sumOperand(vs ...int64) []byte {
	b := []byte{mergeSum}
	for _, v := range vs {
		b = binary.AppendVarint(b, v)
	}
	return b
}

func maxOperand(v uint64) []byte { return binary.AppendUvarint([]byte{mergeMax}, v) }

// decodeSum returns the n counters of a sum value (missing ones are zero).
func decodeSum(b []byte, n int) ([]int64, error) {
	m := &valueMerger{}
	if err := m.add(b); err != nil {
		return nil, err
	}
	if m.tag != mergeSum {
		return nil, corruptf("value is not a sum")
	}
	out := make([]int64, max(n, len(m.sums)))
	copy(out, m.sums)
	return out[:n], nil
}

func decodeMax(b []byte) (uint64, error) {
	m := &valueMerger{}
	if err := m.add(b); err != nil {
		return 0, err
	}
	if m.tag != mergeMax {
		return 0, corruptf("value is not a max")
	}
	return m.max, nil
}
