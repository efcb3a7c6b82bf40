#include "textflag.h"

// func orMasks4(v unsafe.Pointer, ns []qsNode, lanes *[4]uint64)
//
// For each 16-byte node of ns (mask at 0, tree at 8): the mask broadcast to
// four lanes, and-ed with lanes, or-ed into the 32 bytes at v + 32*tree.
TEXT ·orMasks4(SB), NOSPLIT, $0-40
	MOVQ v+0(FP), DI
	MOVQ ns_base+8(FP), SI
	MOVQ ns_len+16(FP), CX
	MOVQ lanes+32(FP), AX
	TESTQ CX, CX
	JEQ done
	VMOVDQU (AX), Y0

loop:
	MOVL 8(SI), AX
	SHLQ $5, AX
	VPBROADCASTQ (SI), Y1
	VPAND Y0, Y1, Y1
	VPOR (DI)(AX*1), Y1, Y1
	VMOVDQU Y1, (DI)(AX*1)
	ADDQ $16, SI
	DECQ CX
	JNE loop
	VZEROUPPER

done:
	RET
