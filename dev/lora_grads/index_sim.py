"""Checks the index math of lora_grads.cuh's v1 and of v2 (src/ops/cuda/lora_dy_grads.cuh, which
dev/lora_grads/lora_dy_grads.patch adds) without a GPU: their blocking (grid P x Q, 128-row blocks, 128-column
tiles, the shared-memory layouts with ld 136, v2's stage ring) and WMMA's col_major / row_major fragment addressing,
transliterated over flat Python lists, against a direct sum. Exact arithmetic on small integers, so any index
slip shows as a mismatch. Not the kernel's numerics (the harness on a GPU checks those).
    python3 dev/lora_grads/index_sim.py"""
import random

R, RB_ROWS, RBS, TILE, LD = 16, 128, 2, 128, 136
ROWS_CTA = RB_ROWS * RBS


def plan(N, out, sms):
    P = (N + ROWS_CTA - 1) // ROWS_CTA
    tiles = (out + TILE - 1) // TILE
    want = max(1, min(tiles, (2 * sms + P - 1) // P))
    tpq = (tiles + want - 1) // want
    return P, (tiles + tpq - 1) // tpq, tpq


def load_col_major(buf, base, ld):  # fragment (rows m/k, cols n/k): element (i, j) at base + j * ld + i
    return [[buf[base + j * ld + i] for j in range(16)] for i in range(16)]


def mma(acc, a, b):
    for i in range(16):
        for j in range(16):
            acc[i][j] += sum(a[i][k] * b[k][j] for k in range(16))


def load_uT(uT, N, row0, rbs):
    """u^T of rbs row blocks from row0 into shared memory [rbs][16][LD] (rows past N zero), 8 elements a copy as
    both kernels' threads take them."""
    us = [0] * (rbs * R * LD)
    for i in range(rbs * R * (RB_ROWS // 8)):
        rb, j, c = i // (R * 16), (i // 16) % R, (i % 16) * 8
        n = row0 + rb * RB_ROWS + c
        for e in range(8):
            us[(rb * R + j) * LD + c + e] = uT[j * N + n + e] if n < N else 0
    return us


def kernel(dy, uT, B, N, out, P, Q, tpq):
    W1 = [0] * (P * out * R)
    W2 = [0] * (Q * R * N)
    tiles = (out + TILE - 1) // TILE
    for p in range(P):
        for q in range(Q):
            row0 = p * ROWS_CTA
            us = load_uT(uT, N, row0, RBS)
            du_acc = [[[0] * 16 for _ in range(16)] for _ in range(RBS * 8)]  # [rb * 8 + warp]
            for t in range(q * tpq, min(tiles, q * tpq + tpq)):
                o0 = t * TILE
                bs = [0] * (TILE * R)
                for i in range(TILE * (R // 8)):
                    o, c = o0 + i // 2, (i % 2) * 8
                    for e in range(8):
                        bs[(i // 2) * R + c + e] = B[o * R + c + e] if o < out else 0
                db_acc = [[[0] * 16 for _ in range(16)] for _ in range(8)]
                for rb in range(RBS):
                    dys = [0] * (RB_ROWS * LD)
                    for i in range(RB_ROWS * (TILE // 8)):
                        r, c = i // (TILE // 8), (i % (TILE // 8)) * 8
                        n, o = row0 + rb * RB_ROWS + r, o0 + c
                        for e in range(8):
                            dys[r * LD + c + e] = dy[n * out + o + e] if n < N and o < out else 0
                    for w in range(8):
                        for k in range(TILE // 16):
                            mma(du_acc[rb * 8 + w], load_col_major(bs, k * 16 * R, R), load_col_major(dys, w * 16 * LD + k * 16, LD))
                        for k in range(RB_ROWS // 16):
                            mma(db_acc[w], load_col_major(dys, k * 16 * LD + w * 16, LD),
                                load_col_major(us, rb * R * LD + k * 16, LD))
                for w in range(8):
                    oc = o0 + w * 16
                    if oc < out:
                        for i in range(16):
                            for j in range(16):
                                W1[(p * out + oc) * R + i * R + j] = db_acc[w][i][j]  # row-major, ld 16
            for rb in range(RBS):
                for w in range(8):
                    for e in range(256):
                        j, n = e // 16, row0 + rb * RB_ROWS + w * 16 + e % 16
                        if n < N:
                            W2[(q * R + j) * N + n] = du_acc[rb * 8 + w][j][e % 16]
    dB = [sum(W1[p * out * R + i] for p in range(P)) for i in range(out * R)]
    duT = [sum(W2[q * R * N + i] for q in range(Q)) for i in range(R * N)]
    return dB, duT


STAGES, MAX_RBS, STAGE_BYTES = 4, 4, TILE * LD * 2 + TILE * R * 2


def plan2(N, out, sms):
    tiles, row_blocks = (out + TILE - 1) // TILE, (N + RB_ROWS - 1) // RB_ROWS
    best, best_cost = None, None
    for rbs in range(1, MAX_RBS + 1):
        for tpq in range(1, tiles + 1):
            P, Q = (row_blocks + rbs - 1) // rbs, (tiles + tpq - 1) // tpq
            waves = (P * Q + sms - 1) // sms
            cost = waves * rbs * tpq * STAGE_BYTES * sms + 2.0 * (P * out + Q * N) * R * 4
            if best_cost is None or cost < best_cost:
                best, best_cost = (tiles, rbs, P, tpq, Q), cost
    return best


def kernel_v2(dy, uT, B, N, out, pl):
    """v2: the block's sub-tiles (t, rb) through a ring of STAGES buffers, issued STAGES - 1 ahead of their use,
    as the kernel orders them (copies modelled as done when issued, the latest moment cp.async can land)."""
    tiles, rbs, P, tpq, Q = pl
    W1 = [0] * (P * out * R)
    W2 = [0] * (Q * R * N)
    for p in range(P):
        for q in range(Q):
            row0 = p * rbs * RB_ROWS
            t0, t1 = q * tpq, min(tiles, q * tpq + tpq)
            n_sub = (t1 - t0) * rbs
            us = load_uT(uT, N, row0, rbs)
            ring = [None] * STAGES  # (sub-tile index, dy tile, B rows)

            def issue(i):
                if i >= n_sub:
                    return
                t, rb = t0 + i // rbs, i % rbs
                o0, n0 = t * TILE, row0 + rb * RB_ROWS
                d = [0] * (TILE * LD)
                for k in range(TILE * RB_ROWS // 8 // 256):
                    for th in range(256):
                        c = th + k * 256
                        r, col = c // (TILE // 8), (c % (TILE // 8)) * 8
                        n, o = n0 + r, o0 + col
                        for e in range(8):
                            d[r * LD + col + e] = dy[n * out + o + e] if n < N and o < out else 0
                b = [0] * (TILE * R)
                for th in range(256):
                    r, half = th // 2, (th % 2) * 8
                    for e in range(8):
                        b[r * R + half + e] = B[(o0 + r) * R + half + e] if o0 + r < out else 0
                ring[i % STAGES] = (i, d, b)

            for i in range(STAGES - 1):
                issue(i)
            du_acc = [[[[0] * 16 for _ in range(16)] for _ in range(8)] for _ in range(rbs)]
            db_acc = [[[0] * 16 for _ in range(16)] for _ in range(8)]
            for i in range(n_sub):
                issue(i + STAGES - 1)
                got, dys, bs = ring[i % STAGES]
                assert got == i, f"stage {i % STAGES} holds sub-tile {got}, not {i}"
                t, rb = t0 + i // rbs, i % rbs
                for w in range(8):
                    for k in range(TILE // 16):
                        mma(du_acc[rb][w], load_col_major(bs, k * 16 * R, R), load_col_major(dys, w * 16 * LD + k * 16, LD))
                    for k in range(RB_ROWS // 16):
                        mma(db_acc[w], load_col_major(dys, k * 16 * LD + w * 16, LD), load_col_major(us, rb * R * LD + k * 16, LD))
                if rb == rbs - 1:
                    for w in range(8):
                        oc = t * TILE + w * 16
                        if oc < out:
                            for a in range(16):
                                for j in range(16):
                                    W1[(p * out + oc) * R + a * R + j] = db_acc[w][a][j]
                    db_acc = [[[0] * 16 for _ in range(16)] for _ in range(8)]
            for rb in range(rbs):
                for w in range(8):
                    for e in range(256):
                        j, n = e // 16, row0 + rb * RB_ROWS + w * 16 + e % 16
                        if n < N:
                            W2[(q * R + j) * N + n] = du_acc[rb][w][j][e % 16]
    dB = [sum(W1[p * out * R + i] for p in range(P)) for i in range(out * R)]
    duT = [sum(W2[q * R * N + i] for q in range(Q)) for i in range(R * N)]
    return dB, duT


def main():
    rnd = random.Random(3)
    for N, out, sms in [(40, 16, 132), (264, 48, 132), (520, 272, 4), (256, 400, 1), (648, 400, 3), (1032, 144, 2), (456, 32, 1)]:
        dy = [rnd.randint(-3, 3) for _ in range(N * out)]
        uT = [rnd.randint(-3, 3) for _ in range(R * N)]
        B = [rnd.randint(-3, 3) for _ in range(out * R)]
        dB_ref = [sum(dy[n * out + o] * uT[j * N + n] for n in range(N)) for o in range(out) for j in range(R)]
        du_ref = [sum(dy[n * out + o] * B[o * R + j] for o in range(out)) for j in range(R) for n in range(N)]
        P, Q, tpq = plan(N, out, sms)
        got = kernel(dy, uT, B, N, out, P, Q, tpq)
        print(f"v1 N {N} out {out} (P {P} Q {Q} tiles/q {tpq}):", "ok" if got == (dB_ref, du_ref) else "MISMATCH")
        assert got == (dB_ref, du_ref)
        pl = plan2(N, out, sms)
        got = kernel_v2(dy, uT, B, N, out, pl)
        print(f"v2 N {N} out {out} (row blocks a block {pl[1]}, P {pl[2]} Q {pl[4]} tiles/q {pl[3]}):",
              "ok" if got == (dB_ref, du_ref) else "MISMATCH")
        assert got == (dB_ref, du_ref)
    # plans of the real shapes (132 SMs): what the H200 run will use
    for N, out in [(8192, 896), (8192, 128), (8192, 4864), (8192, 1536), (8192, 256), (8192, 8960)]:
        tiles, rbs, P, tpq, Q = plan2(N, out, 132)
        print(f"plan2 N {N} out {out}: {rbs} row blocks a block, P {P}, Q {Q} ({P * Q} blocks), {tpq} tiles a column group")


main()
