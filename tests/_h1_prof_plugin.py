import time, pytest
@pytest.fixture(autouse=True)
def _log_judge(monkeypatch):
    from evals.judge import JudgeBehaviour
    real = JudgeBehaviour._complete
    def timed(self, prompt, schema):
        t = time.time(); out = real(self, prompt, schema)
        print(f"\nJUDGE {time.time()-t:5.1f}s prompt_chars={len(prompt)} out_chars={len(out)} out={out[:150]!r}", flush=True)
        return out
    monkeypatch.setattr(JudgeBehaviour, "_complete", timed)
