"""Pool(store=...): answered items survive a restart of the producer."""

import threading

from claude_bridge_tmux.api import ResultStore


def test_results_survive_a_new_store_on_the_same_file(tmp_path):
    path = tmp_path / "answers.sqlite"
    a = ResultStore(path)
    assert a.get("x") is None
    a.put("x", {"result": "one", "session_id": "s"})
    a.put("x", {"result": "two", "session_id": "s"})       # the last answer wins
    a.close()
    assert ResultStore(path).get("x") == {"result": "two", "session_id": "s"}


def test_concurrent_puts(tmp_path):
    store = ResultStore(tmp_path / "a.sqlite")
    threads = [threading.Thread(target=lambda i=i: [store.put(f"{i}-{k}", {"k": k}) for k in range(50)])
               for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(store.get(f"{i}-{k}") == {"k": k} for i in range(4) for k in range(50))
