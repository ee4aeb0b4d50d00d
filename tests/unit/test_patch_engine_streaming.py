"""apply_batch(..., on_file=...) hands each changed file over (as buffers) once the batch's last op
on it has applied, instead of collecting them in outcome.files: same results, same bytes for a
batch that applies; for one that fails, what was handed over is what the caller drops."""
from hypothesis import HealthCheck, given, settings, strategies as st

from patch_engine import engine
from tests.unit.test_patch_engine import file_text, operation


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=st.dictionaries(st.sampled_from(["f0", "f1", "f2"]), file_text),
       ops=st.lists(operation, min_size=1, max_size=8))
def test_streamed_files_are_the_collected_files(files, ops):
    store = {k: v.encode() for k, v in files.items()}
    collected = engine.apply_batch(ops, store.get)
    handed: dict[str, bytes] = {}
    reads: list[str] = []

    def read(path):
        reads.append(path)
        return store.get(path)

    def on_file(path, buffers):
        assert path not in handed  # once per file
        handed[path] = b"".join(buffers)

    streamed = engine.apply_batch(ops, read, on_file=on_file)
    assert streamed.results == collected.results and streamed.files == {}
    assert len(reads) == len(set(reads))  # each file read once
    if collected.ok:
        assert handed == collected.files


def test_a_file_is_handed_over_after_its_last_op_and_a_later_failure_fails_the_batch():
    events = []
    ops = [{"op": "append", "file": "a", "content": "x"},
           {"op": "append", "file": "b", "content": "y"},
           {"op": "append", "file": "a", "content": "z"},
           {"op": "replace-block", "file": "b", "anchor": {"search": "nowhere"}, "content": "w"}]

    def read(path):
        events.append(("read", path))
        return b"1\n"

    outcome = engine.apply_batch(ops, read, on_file=lambda path, buffers: events.append(("file", path, b"".join(buffers))))
    assert events == [("read", "a"), ("read", "b"), ("file", "a", b"1\nx\nz\n")]
    assert not outcome.ok and outcome.results[3].code == engine.SEARCH_NOT_FOUND


def test_edits_that_give_back_the_same_bytes_hand_nothing_over():
    handed = []
    ops = [{"op": "replace-block", "file": "a", "anchor": {"line": 2}, "content": "b"},
           {"op": "insert-after", "file": "b", "anchor": {"line": 1}, "content": "new"}]
    store = {"a": b"a\nb\nc\n", "b": b"x\ny\n"}
    outcome = engine.apply_batch(ops, store.get, on_file=lambda path, buffers: handed.append((path, b"".join(buffers))))
    assert outcome.ok and handed == [("b", b"x\nnew\ny\n")]
    assert engine.apply_batch(ops, store.get).files == {"b": b"x\nnew\ny\n"}
