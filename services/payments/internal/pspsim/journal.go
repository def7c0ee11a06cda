package pspsim

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// entry is one booking: the answer to an idempotency key, and the charge
// it made or changed.
type entry struct {
	Key    string        `json:"key"`
	Reply  *reply        `json:"reply,omitempty"`
	Charge *ChargeRecord `json:"charge,omitempty"`
}

// journal is the ledger on disk: one JSON line per booking, appended
// before the booking is answered and read back at start. Writes are not
// fsynced: a killed simulator (kill -9) loses nothing, since the data is
// in the kernel's page cache; only a crash of the machine could.
type journal struct {
	f      *os.File
	w      *bufio.Writer
	broken error // a write failed: what follows it could not be read back
}

// openJournal replays path's entries through apply and opens it for
// appending (creating it and its directory on first start). A last line
// cut short by a crash is dropped.
func openJournal(path string, apply func(entry)) (*journal, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("ledger %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600) // #nosec G304 -- the operator's PSP_LEDGER_FILE
	if err != nil {
		return nil, fmt.Errorf("ledger %s: %w", path, err)
	}
	r := bufio.NewReader(f)
	var good int64 // bytes of complete entries
	for {
		line, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			break // a partial last line (no newline) is dropped
		}
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("ledger %s: %w", path, err)
		}
		var e entry
		if err := json.Unmarshal(line, &e); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("ledger %s: entry at byte %d: %w", path, good, err)
		}
		apply(e)
		good += int64(len(line))
	}
	if err := f.Truncate(good); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("ledger %s: %w", path, err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("ledger %s: %w", path, err)
	}
	return &journal{f: f, w: bufio.NewWriter(f)}, nil
}

func (j *journal) write(e entry) error {
	if j.broken != nil {
		return j.broken
	}
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := j.w.Write(append(b, '\n')); err != nil {
		j.broken = err
		return err
	}
	if err := j.w.Flush(); err != nil {
		j.broken = err
		return err
	}
	return nil
}

func (j *journal) Close() error {
	if err := j.w.Flush(); err != nil {
		_ = j.f.Close()
		return err
	}
	return j.f.Close()
}
