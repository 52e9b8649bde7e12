package main

import (
	"debug/elf"
)

// checkStatic: the binary, built as the Dockerfile builds it (CGO off),
// must need no dynamic loader and no shared library: the runtime image is
// distroless "static" and has no libc.
func checkStatic(r *report, bin string) {
	f, err := elf.Open(bin)
	if err != nil {
		r.fail("static binary: %v", err)
		return
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			r.fail("static binary: %s has a dynamic loader (PT_INTERP); build with CGO_ENABLED=0", bin)
			return
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		r.fail("static binary: %s needs %v; build with CGO_ENABLED=0", bin, libs)
		return
	}
	r.note("static binary: no dynamic loader, no shared libraries (distroless static can run it)")
}
