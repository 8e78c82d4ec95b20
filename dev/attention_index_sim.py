# Index-math check for src/ops/cuda/attention.cu and attention_backward.cu, runnable without a GPU:
# a line-by-line Python transliteration of the three kernels and the split combine (blocks, warps,
# lanes, shared tiles, causal/segment masks, GQA row mapping, key splits), in f64, compared with a naive
# reference. It checks the tiling logic, not CUDA itself (races, bank conflicts, f32 rounding): keep it in
# step with the kernels when they change. Pure Python 3, no dependencies: python3 dev/attention_index_sim.py
import math, random
kWarps, kTile = 8, 32
NEG = float('-inf')

def idx4(B,T,H,D): return lambda b,t,h,d: ((b*T+t)*H+h)*D+d

def reference(q,k,v,B,T,H,Hkv,D,S,kv_len,scale,seg):
    n_rep=H//Hkv; kv_start=kv_len-T
    out=[0.0]*(B*T*H*D); lse=[0.0]*(B*H*T); P={}
    for b in range(B):
        for t in range(T):
            for h in range(H):
                g=h//n_rep; sc=[]
                for j in range(kv_len):
                    if j> kv_start+t: continue
                    if seg and seg[b*T+j]!=seg[b*T+t]: continue
                    s=sum(q[((b*T+t)*H+h)*D+d]*k[((b*S+j)*Hkv+g)*D+d] for d in range(D))*scale
                    sc.append((j,s))
                m=max(s for _,s in sc); l=sum(math.exp(s-m) for _,s in sc)
                lse[(b*H+h)*T+t]=m+math.log(l)
                for d in range(D):
                    out[((b*T+t)*H+h)*D+d]=sum(math.exp(s-m)/l*v[((b*S+j)*Hkv+g)*D+d] for j,s in sc)
                for j,s in sc: P[(b,t,h,j)]=math.exp(s-m)/l
    return out,lse,P

def ref_backward(dout,q,k,v,out,P,B,T,H,Hkv,D,S,scale):
    n_rep=H//Hkv
    dq=[0.0]*(B*T*H*D); dk=[0.0]*(B*T*Hkv*D); dv=[0.0]*(B*T*Hkv*D)
    # dP, dS
    for b in range(B):
        for t in range(T):
            for h in range(H):
                g=h//n_rep
                keys=[j for j in range(T) if (b,t,h,j) in P]
                dP={j:sum(dout[((b*T+t)*H+h)*D+d]*v[((b*S+j)*Hkv+g)*D+d] for d in range(D)) for j in keys}
                delta=sum(P[(b,t,h,j)]*dP[j] for j in keys)
                for j in keys:
                    ds=P[(b,t,h,j)]*(dP[j]-delta)
                    for d in range(D):
                        dq[((b*T+t)*H+h)*D+d]+=scale*ds*k[((b*S+j)*Hkv+g)*D+d]
                        dk[((b*T+j)*Hkv+g)*D+d]+=scale*ds*q[((b*T+t)*H+h)*D+d]
                        dv[((b*T+j)*Hkv+g)*D+d]+=P[(b,t,h,j)]*dout[((b*T+t)*H+h)*D+d]
    return dq,dk,dv

class A: pass

def fwd_kernel(q,k,v,out,lse,a,grid,sp=None):
    spn,chunk,part=(1,None,None) if sp is None else sp
    for b in range(grid[2]):
      for g in range(grid[1]):
        for bx in range(grid[0]):
          rows=a.T*a.n_rep
          row_blocks=grid[0]//spn; split=bx//row_blocks
          row0=(row_blocks-1-bx%row_blocks)*kWarps
          W=[]
          for warp in range(kWarps):
            w=A(); r=row0+warp; w.active=r<rows; w.t=w.h=0
            if w.active: w.t=r//a.n_rep; w.h=g*a.n_rep+(r-w.t*a.n_rep)
            w.key_end=a.kv_start+w.t+1 if w.active else 0
            w.q_off=((b*a.T+w.t)*a.H+w.h)*a.D
            w.qs=[q[w.q_off+d] if (w.active and d<a.D) else 0.0 for d in range(a.D4)]
            w.my_seg=a.seg[b*a.T+w.t] if (a.seg and w.active) else 0
            w.m=NEG; w.l=0.0; w.acc=[0.0]*(32*a.DPL)
            W.append(w)
          block_key_end=a.kv_start+(min(rows,row0+kWarps)-1)//a.n_rep+1
          k_lo=split*chunk if chunk else 0
          k_hi=min(block_key_end, k_lo+chunk) if chunk else block_key_end
          kv_b=b*a.S*a.Hkv*a.D+g*a.D; kv_row=a.Hkv*a.D
          for k0 in range(k_lo,k_hi,kTile):
            Ks=[[0.0]*a.D4 for _ in range(kTile)]; Vs=[[0.0]*a.D4 for _ in range(kTile)]; Ss=[None]*kTile
            for idx in range(kTile*a.D4):
              j=idx//a.D4; d=idx-j*a.D4; key=k0+j
              if key<k_hi and d<a.D:
                off=kv_b+key*kv_row+d; Ks[j][d]=k[off]; Vs[j][d]=v[off]
            if a.seg:
              for tx in range(kTile):
                key=k0+tx; Ss[tx]=a.seg[b*a.T+key] if key<k_hi else 0
            for w in W:
              if not w.active or k0>=w.key_end: continue
              s=[];ok=[]
              for lane in range(32):
                key=k0+lane; o= key<w.key_end and key<k_hi and (not a.seg or Ss[lane]==w.my_seg)
                ok.append(o); s.append(sum(w.qs[d]*Ks[lane][d] for d in range(a.D4))*a.scale if o else NEG)
              m_new=max(w.m,max(s)); p=[0.0]*32; alpha=1.0
              if m_new!=NEG:
                p=[math.exp(s[l]-m_new) if ok[l] else 0.0 for l in range(32)]
                alpha=math.exp(w.m-m_new) if w.m!=NEG else 0.0
              w.l=w.l*alpha+sum(p); w.m=m_new
              w.acc=[x*alpha for x in w.acc]
              jn=min(kTile,min(w.key_end,k_hi)-k0)
              for j in range(jn):
                for lane in range(32):
                  for i in range(a.DPL):
                    d=lane+32*i
                    if d<a.D: w.acc[d]+=p[j]*Vs[j][d]
          for warp,w in enumerate(W):
            if not w.active: continue
            if part is not None:
              r=row0+warp
              base=(split*a.B*a.Hkv*rows+(b*a.Hkv+g)*rows+r)*(a.D+2)
              part[base]=w.m; part[base+1]=w.l
              for d in range(a.D): part[base+2+d]=w.acc[d]
              continue
            inv=1.0/w.l if w.l>0 else 0.0
            for d in range(a.D): out[w.q_off+d]=w.acc[d]*inv
            if lse is not None: lse[(b*a.H+w.h)*a.T+w.t]=w.m+math.log(w.l) if w.l>0 else NEG

def combine(part,out,lse,a,splits):
    rows=a.T*a.n_rep; total=a.B*a.Hkv*rows; stride=total*(a.D+2)
    for row in range(total):
        r=row%rows; g=(row//rows)%a.Hkv; b=row//(rows*a.Hkv)
        t=r//a.n_rep; h=g*a.n_rep+(r-t*a.n_rep)
        M=max(part[s*stride+row*(a.D+2)] for s in range(splits))
        L=sum(part[s*stride+row*(a.D+2)+1]*math.exp(part[s*stride+row*(a.D+2)]-M) for s in range(splits) if part[s*stride+row*(a.D+2)]!=NEG)
        q_off=((b*a.T+t)*a.H+h)*a.D
        for d in range(a.D):
            o=sum(part[s*stride+row*(a.D+2)+2+d]*math.exp(part[s*stride+row*(a.D+2)]-M) for s in range(splits) if part[s*stride+row*(a.D+2)]!=NEG)
            out[q_off+d]=o/L
        lse[(b*a.H+h)*a.T+t]=M+math.log(L)

def choose_split(a,blocks,sms):
    if blocks*2>sms or a.kv_len<8*kTile: return None
    by_gpu=(2*sms+blocks-1)//blocks; by_keys=a.kv_len//(2*kTile); n=min(by_gpu,by_keys,256)
    if n<2: return None
    tiles=(a.kv_len+kTile-1)//kTile; chunk=((tiles+n-1)//n)*kTile; n=(a.kv_len+chunk-1)//chunk
    return n,chunk

def dq_kernel(dout,q,k,v,out,lse,dq,delta,a,grid):
    for b in range(grid[2]):
      for g in range(grid[1]):
        for bx in range(grid[0]):
          rows=a.T*a.n_rep; row0=(grid[0]-1-bx)*kWarps; W=[]
          for warp in range(kWarps):
            w=A(); r=row0+warp; w.active=r<rows; w.t=w.h=0
            if w.active: w.t=r//a.n_rep; w.h=g*a.n_rep+(r-w.t*a.n_rep)
            w.key_end=a.kv_start+w.t+1 if w.active else 0
            w.q_off=((b*a.T+w.t)*a.H+w.h)*a.D; stat=(b*a.H+w.h)*a.T+w.t
            w.qs=[q[w.q_off+d] if (w.active and d<a.D) else 0.0 for d in range(a.D4)]
            w.dos=[dout[w.q_off+d] if (w.active and d<a.D) else 0.0 for d in range(a.D4)]
            w.dd=sum(w.dos[d]*out[w.q_off+d] for d in range(a.D)) if w.active else 0.0
            if w.active: delta[stat]=w.dd
            w.lse=lse[stat] if w.active else 0.0
            w.my_seg=a.seg[b*a.T+w.t] if (a.seg and w.active) else 0
            w.acc=[0.0]*(32*a.DPL); W.append(w)
          block_key_end=a.kv_start+(min(rows,row0+kWarps)-1)//a.n_rep+1
          kv_b=b*a.S*a.Hkv*a.D+g*a.D; kv_row=a.Hkv*a.D
          for k0 in range(0,block_key_end,kTile):
            Ks=[[0.0]*a.D4 for _ in range(kTile)]; Vs=[[0.0]*a.D4 for _ in range(kTile)]; Ss=[None]*kTile
            for idx in range(kTile*a.D4):
              j=idx//a.D4; d=idx-j*a.D4; key=k0+j
              if key<block_key_end and d<a.D:
                off=kv_b+key*kv_row+d; Ks[j][d]=k[off]; Vs[j][d]=v[off]
            if a.seg:
              for tx in range(kTile):
                key=k0+tx; Ss[tx]=a.seg[b*a.T+key] if key<block_key_end else 0
            for w in W:
              if not w.active or k0>=w.key_end: continue
              DS=[0.0]*32
              for lane in range(32):
                key=k0+lane
                if key<w.key_end and (not a.seg or Ss[lane]==w.my_seg):
                  p=math.exp(sum(w.qs[d]*Ks[lane][d] for d in range(a.D4))*a.scale-w.lse)
                  DS[lane]=p*(sum(w.dos[d]*Vs[lane][d] for d in range(a.D4))-w.dd)
              jn=min(kTile,w.key_end-k0)
              for j in range(jn):
                for d in range(a.D): w.acc[d]+=DS[j]*Ks[j][d]
          for w in W:
            if w.active:
              for d in range(a.D): dq[w.q_off+d]=w.acc[d]*a.scale

def dkdv_kernel(dout,q,k,v,lse,delta,dk,dv,Tk,a,grid):
    for b in range(grid[2]):
      for g in range(grid[1]):
        for bx in range(grid[0]):
          rows=a.T*a.n_rep; j0=bx*kWarps
          kv_b=b*a.S*a.Hkv*a.D+g*a.D; kv_row=a.Hkv*a.D; W=[]
          for warp in range(kWarps):
            w=A(); w.j=j0+warp; w.active=w.j<a.T
            w.ks=[k[kv_b+w.j*kv_row+d] if (w.active and d<a.D) else 0.0 for d in range(a.D4)]
            w.vs=[v[kv_b+w.j*kv_row+d] if (w.active and d<a.D) else 0.0 for d in range(a.D4)]
            w.my_seg=a.seg[b*a.T+w.j] if (a.seg and w.active) else 0
            w.ak=[0.0]*a.D; w.av=[0.0]*a.D; W.append(w)
          for r0 in range(j0*a.n_rep, rows, kTile):
            Qs=[[0.0]*a.D4 for _ in range(kTile)]; dOs=[[0.0]*a.D4 for _ in range(kTile)]
            Ls=[0.0]*kTile; Dl=[0.0]*kTile; Ss=[0]*kTile
            for idx in range(kTile*a.D4):
              i=idx//a.D4; d=idx-i*a.D4; r=r0+i
              if r<rows and d<a.D:
                t=r//a.n_rep; h=g*a.n_rep+(r-t*a.n_rep); off=((b*a.T+t)*a.H+h)*a.D+d
                Qs[i][d]=q[off]; dOs[i][d]=dout[off]
            for tx in range(kTile):
              r=r0+tx
              if r<rows:
                t=r//a.n_rep; h=g*a.n_rep+(r-t*a.n_rep); st=(b*a.H+h)*a.T+t
                Ls[tx]=lse[st]; Dl[tx]=delta[st]; Ss[tx]=a.seg[b*a.T+t] if a.seg else 0
            for w in W:
              if not w.active: continue
              P=[0.0]*32; DS=[0.0]*32
              for lane in range(32):
                r=r0+lane
                if r<rows and r//a.n_rep>=w.j and (not a.seg or Ss[lane]==w.my_seg):
                  P[lane]=math.exp(sum(Qs[lane][d]*w.ks[d] for d in range(a.D4))*a.scale-Ls[lane])
                  DS[lane]=P[lane]*(sum(dOs[lane][d]*w.vs[d] for d in range(a.D4))-Dl[lane])
              n_in=min(kTile,rows-r0)
              for i2 in range(n_in):
                for d in range(a.D):
                  w.av[d]+=P[i2]*dOs[i2][d]; w.ak[d]+=DS[i2]*Qs[i2][d]
          for w in W:
            if not w.active: continue
            o=(b*Tk+w.j)*kv_row+g*a.D
            for d in range(a.D): dk[o+d]=w.ak[d]*a.scale; dv[o+d]=w.av[d]

def run(B,T,H,Hkv,D,S,kv_len,use_seg,bwd):
    random.seed(B*1000+T*7+H+D+S)
    a=A(); a.B,a.T,a.H,a.Hkv,a.D,a.S=B,T,H,Hkv,D,S; a.n_rep=H//Hkv
    a.D4=(D+3)//4*4; a.kv_len=kv_len; a.kv_start=kv_len-T; a.scale=1/math.sqrt(D)
    a.DPL=2 if D<=64 else 4 if D<=128 else 8
    a.seg=None
    if use_seg:
        a.seg=[]
        for b in range(B):
            s=0
            for t in range(T):
                if t>0 and random.random()<0.25: s+=1
                a.seg.append(s)
    rn=lambda n:[random.gauss(0,1) for _ in range(n)]
    q=rn(B*T*H*D); k=rn(B*S*Hkv*D); v=rn(B*S*Hkv*D)
    out=[0.0]*len(q); lse=[0.0]*(B*H*T)
    grid=((T*a.n_rep+kWarps-1)//kWarps,Hkv,B)
    sp=choose_split(a,grid[0]*Hkv*B,132)
    if sp and not bwd:
        n,chunk=sp; part=[float('nan')]*(n*B*Hkv*T*a.n_rep*(D+2))
        fwd_kernel(q,k,v,out,lse,a,(grid[0]*n,Hkv,B),(n,chunk,part))
        assert not any(x!=x for x in part), "partials not all written"
        combine(part,out,lse,a,n)
    else:
        fwd_kernel(q,k,v,out,lse,a,grid)
    ro,rl,P=reference(q,k,v,B,T,H,Hkv,D,S,kv_len,a.scale,a.seg)
    e=max(abs(x-y) for x,y in zip(out,ro)); el=max(abs(x-y) for x,y in zip(lse,rl))
    msg=f"split{sp} B{B} T{T} H{H}/{Hkv} D{D} S{S} kv{kv_len} seg{int(use_seg)}: fwd {e:.1e} lse {el:.1e}"
    assert e<1e-9 and el<1e-9, msg
    if bwd:
        dout=rn(len(q)); dq=[0.0]*len(q); dk=[0.0]*(B*T*Hkv*D); dv=[0.0]*(B*T*Hkv*D); delta=[0.0]*(B*H*T)
        dq_kernel(dout,q,k,v,out,lse,dq,delta,a,grid)
        dkdv_kernel(dout,q,k,v,lse,delta,dk,dv,T,a,((T+kWarps-1)//kWarps,Hkv,B))
        rq,rk,rv=ref_backward(dout,q,k,v,out,P,B,T,H,Hkv,D,S,a.scale)
        e2=[max(abs(x-y) for x,y in zip(u,w)) for u,w in ((dq,rq),(dk,rk),(dv,rv))]
        msg+=f" dq {e2[0]:.1e} dk {e2[1]:.1e} dv {e2[2]:.1e}"
        assert max(e2)<1e-9, msg
    print(msg)

run(1,5,4,2,8,5,5,False,True)
run(2,37,6,2,6,37,37,False,True)     # D not multiple of 4, T > tile, GQA 3
run(1,40,4,4,5,40,40,True,True)      # segments, MHA
run(2,19,8,1,16,19,19,True,True)     # GQA 8 (one block per t), segments
run(1,1,6,2,8,70,45,False,False)     # decode: T=1, kv_len 45 of capacity 70
run(2,3,4,2,4,50,40,False,False)     # chunked prefill: T=3 with cache
run(1,70,2,1,4,70,70,False,True)     # many key tiles
run(1,1,6,2,8,700,600,False,False)   # decode, split
run(2,1,4,1,6,300,300,False,False)   # decode, split, D%4 != 0
run(1,4,4,2,4,400,333,False,False)   # small prefill with cache, split
run(1,300,2,2,4,300,300,True,False)  # prefill with segments: 38 blocks -> no split? check
run(1,260,1,1,4,260,260,True,False)  # prefill with segments, split
