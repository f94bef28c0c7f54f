#!/usr/bin/env bash
# The CPU the benchmarks run on: its model name, cores, the ISA features our
# kernels choose between at run time (AVX2/FMA, AVX-512, AVX512-BF16, AMX)
# and an estimate of its peak, so a GFLOP/s figure can be read as a fraction
# of what the chip can do.
#   bench/cpu.sh           prints the description (two lines)
#   bench/cpu.sh --peak    prints "FP32 BF16": the peak GFLOP/s of ONE core
#
# Peak = clock x flop per cycle.  The clock is the "cpu MHz" /proc/cpuinfo
# shows (on a VM the nominal clock; boost can run above it, so a figure a
# little over 100% is possible).  Flop per cycle per core assumes two vector
# FMA pipes, as on every AVX2/AVX-512 core since Haswell / Zen 2 except
# Zen 4, whose AVX-512 runs on 256-bit halves:
#   fp32: 2 pipes x lanes x 2 (an FMA is two flop); lanes 16 with AVX-512,
#         8 with AVX2+FMA (and on Zen 4), 4 with SSE (mul + add, no FMA)
#   bf16: AVX512-BF16's dot product (vdpbf16ps) does two bf16 products per
#         fp32 lane, twice the fp32 rate; AMX-BF16 tiles do 1024 bf16
#         multiply-adds per cycle per core (2048 flop); without either, bf16
#         runs at the fp32 rate (converted to float).
set -eu
info=/proc/cpuinfo
flags=" $(grep -m1 '^flags' "$info" | cut -d: -f2) "
has() { case "$flags" in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
model=$(grep -m1 '^model name' "$info" | cut -d: -f2 | sed 's/^ *//')
family=$(grep -m1 '^cpu family' "$info" | cut -d: -f2 | tr -d ' ')
vendor=$(grep -m1 '^vendor_id' "$info" | cut -d: -f2 | tr -d ' ')
mhz=$(awk -F: '/^cpu MHz/ { if ($2 > m) m = $2 } END { printf "%.0f", m }' "$info")
cores=$(nproc)

isa='' fp32=8
if has avx512f; then
    isa="AVX2 FMA AVX-512" fp32=64
    # Zen 4 (family 0x19) executes 512-bit ops on its 256-bit units
    [ "$vendor" = AuthenticAMD ] && [ "$family" = 25 ] && fp32=32 isa="$isa (256-bit units)"
elif has avx2 && has fma; then
    isa="AVX2 FMA" fp32=32
else
    isa="SSE only"
fi
bf16=$fp32 bf16_how="converted to fp32"
if has avx512_bf16; then
    isa="$isa AVX512-BF16" bf16=$((2 * fp32)) bf16_how="AVX512-BF16 dot products"
fi
if has amx_bf16 && has amx_tile; then
    isa="$isa AMX-BF16" bf16=2048 bf16_how="AMX tiles"
else
    isa="$isa (no AMX)"
fi
ghz=$(awk -v m="$mhz" 'BEGIN { printf "%.2f", m / 1000 }')
peak32=$(awk -v g="$ghz" -v f="$fp32" 'BEGIN { printf "%.1f", g * f }')
peak16=$(awk -v g="$ghz" -v f="$bf16" 'BEGIN { printf "%.1f", g * f }')

if [ "${1:-}" = --peak ]; then
    echo "$peak32 $peak16"
    exit 0
fi
echo "cpu: $model, $cores cores at $ghz GHz; ISA: $isa"
echo "peak per core: fp32 $peak32 GFLOP/s ($ghz GHz x $fp32 flop/cycle)," \
    "bf16 $peak16 GFLOP/s ($bf16 flop/cycle, $bf16_how);" \
    "$cores cores: fp32 $(awk -v p="$peak32" -v c="$cores" 'BEGIN { printf "%.0f", p * c }')," \
    "bf16 $(awk -v p="$peak16" -v c="$cores" 'BEGIN { printf "%.0f", p * c }') GFLOP/s"
