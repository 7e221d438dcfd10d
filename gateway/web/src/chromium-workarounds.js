// Works around a Chromium bug (measured with Debian's Chromium 156) that rtcpool's glare
// handling runs into. When a page has more than one RTCPeerConnection and one of them
// applies a remote offer (an implicit rollback) while its own offer is still being set,
// or before that offer has gathered anything, that connection never gathers an ICE
// candidate again: ICE stays 'new' for good and restartIce() does not revive it.
// rtcpool makes both ends offer at once on every join (both add tracks on 'peer'), and the
// polite end applies the other's offer straight away, so with three or more endpoints
// in a pool this hits about every other run.
//
// The shim holds setRemoteDescription and addIceCandidate calls, in call order, until a
// pending local offer is set and has produced its first candidate (1 s at most). It only
// changes timing, as a slower signalling server would; rtcpool's logic is untouched.
// Both the demo page and the browser-test page (tests/browser/page/harness.js) import this file.
const FIRST_CANDIDATE_WAIT_MS = 1000;

export function installGlareShim() {
  const proto = RTCPeerConnection.prototype;
  if (proto.__glareShim) return;
  proto.__glareShim = true;
  const { setLocalDescription, setRemoteDescription, addIceCandidate } = proto;
  const offerReady = new WeakMap(); // pc -> promise: our latest local offer may be rolled back
  const tail = new WeakMap(); // pc -> end of the queue of held remote operations

  proto.setLocalDescription = function (...args) {
    let gathered;
    const firstCandidate = new Promise((resolve) => { gathered = resolve; });
    this.addEventListener('icecandidate', gathered); // also fires (null) when gathering ends
    const result = setLocalDescription.apply(this, args);
    offerReady.set(this, result
      .then(() => {
        // Renegotiating without an ICE restart gathers nothing new: nothing to wait for.
        if (this.signalingState !== 'have-local-offer' || this.iceGatheringState === 'complete') {
          return undefined;
        }
        const timeout = new Promise((resolve) => setTimeout(resolve, FIRST_CANDIDATE_WAIT_MS));
        return Promise.race([firstCandidate, timeout]);
      })
      .catch(() => {})
      .finally(() => this.removeEventListener('icecandidate', gathered)));
    return result;
  };

  function held(pc, operation) {
    const run = (tail.get(pc) || Promise.resolve()).then(() => offerReady.get(pc)).then(operation);
    tail.set(pc, run.catch(() => {}));
    return run;
  }
  proto.setRemoteDescription = function (...args) {
    return held(this, () => setRemoteDescription.apply(this, args));
  };
  proto.addIceCandidate = function (...args) {
    return held(this, () => addIceCandidate.apply(this, args));
  };
}

// 'peer' events that fire before 'join' are for endpoints already in the pool: we are the
// polite end toward them and they offer to us. Opening a data channel at once would make us
// offer too, and when that offer is rolled back Chromium rejects the data section of the
// answer if our offer had it at another position (mid 0 when we send no media, mid 2 in
// theirs): channels never open and the pair renegotiates without end. So the polite end
// opens its channels once the first offer/answer exchange is done (or after 2 s, for a
// peer that never offers).
export function afterFirstExchange(pc, fn) {
  let done = false;
  const go = () => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    pc.removeEventListener('signalingstatechange', check);
    if (pc.signalingState !== 'closed') fn();
  };
  const check = () => { if (pc.signalingState === 'stable' && pc.currentRemoteDescription) go(); };
  const timer = setTimeout(go, 2000);
  pc.addEventListener('signalingstatechange', check);
}
