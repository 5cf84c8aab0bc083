"""End-to-end tests of the project, worker-access and per-project role routes (contract §6.2, §6.4).

Everything goes over HTTP through the real gateway, services, broker and database; the database is
read directly only to check what the API cannot show (stored secrets, raw access rows).
"""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.harness import Api

PROJECT_KEYS = {"id", "priority", "name", "clone_url", "git_repo", "version", "motd", "public", "hidden",
                "chain", "paused", "assign_rate", "submit_rate", "closed_task_count"}
MANAGER_KEYS = {"id", "username", "tracker_admin", "register_time"}
WORKER_KEYS = {"id", "created", "alias", "paused"}
ACCESS_KEYS = {"worker", "project", "assign", "submit", "request"}
UNKNOWN = 1 << 62  # a valid id no test ever creates

READ, EDIT, MANAGE_ACCESS, SECRET, MAINTENANCE, ALL = 1, 2, 4, 8, 16, 31


def uname(prefix: str = "p") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def assert_error(r, status: int, *words: str) -> dict:
    """A refusal: the status, the envelope with ok false and a message naming each of ``words``."""
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["ok"] is False
    assert isinstance(body.get("message"), str) and body["message"]
    for word in words:
        assert word in body["message"], body["message"]
    return body


def assert_ok(r, status: int = 200) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["ok"] is True, body
    return body


def get_project(client: Api, pid: int) -> dict:
    body = assert_ok(client.get(f"/project/get/{pid}"))
    return body["content"]["project"]


def set_role(admin: Api, pid: int, manager: Api, role: int) -> None:
    assert_ok(admin.post(f"/manager/set_role_for_project/{pid}", {"manager": manager.id, "role": role}))


@pytest.fixture
def manager_with_role(api, admin):
    """A fresh non-admin manager holding exactly ``role`` on project ``pid`` (0 = no role)."""

    def make(pid: int, role: int) -> Api:
        m = api.new_manager()
        if role:
            set_role(admin, pid, m, role)
        return m

    return make


def access_row(system, worker: Api, pid: int):
    rows = system.sql("SELECT assign, submit, request FROM worker_access WHERE worker_id = %s AND project_id = %s",
                      worker.id, pid)
    return rows[0] if rows else None


def seed_task(system, pid: int, recipe: str = "seeded") -> int:
    return system.sql("INSERT INTO task (project, recipe) VALUES (%s, %s) RETURNING id", pid, recipe)[0][0]


# --- /project/create ----------------------------------------------------------------------------
class TestCreate:
    def test_answer_shape_and_defaults(self, admin, system):
        name = uname()
        body = assert_ok(admin.post("/project/create", {"name": name}))
        assert set(body["content"]) == {"id"}
        pid = body["content"]["id"]
        assert isinstance(pid, int) and pid >= 1
        p = get_project(admin, pid)
        assert set(p) == PROJECT_KEYS
        assert p == {"id": pid, "priority": 0, "name": name, "clone_url": "", "git_repo": "", "version": "",
                     "motd": "", "public": False, "hidden": False, "chain": 0, "paused": False,
                     "assign_rate": 0, "submit_rate": 0, "closed_task_count": 0}
        secret, webhook_secret = system.sql("SELECT secret, webhook_secret FROM project WHERE id = %s", pid)[0]
        assert secret == "{}"
        assert isinstance(webhook_secret, str) and len(webhook_secret) >= 16

    def test_webhook_secret_is_fresh_per_project(self, make_project, system):
        a, b = make_project(), make_project()
        rows = system.sql("SELECT webhook_secret FROM project WHERE id IN (%s, %s)", a, b)
        assert len({r[0] for r in rows}) == 2

    def test_every_field_is_stored(self, admin, make_project):
        target = make_project()
        fields = {"name": uname("full"), "clone_url": "https://git.example/x.git", "git_repo": "owner/x",
                  "version": "abc123", "motd": "héllo ✓", "priority": (1 << 31) - 1, "public": True,
                  "hidden": False, "chain": target, "assign_rate": 2.5, "submit_rate": 7}
        pid = make_project(**fields)
        p = get_project(admin, pid)
        for key, value in fields.items():
            assert p[key] == value, key
        assert p["paused"] is False and p["closed_task_count"] == 0

    def test_null_counts_as_absent(self, admin):
        pid = assert_ok(admin.post("/project/create", {"name": uname(), "motd": None, "priority": None}))
        p = get_project(admin, pid["content"]["id"])
        assert p["motd"] == "" and p["priority"] == 0

    def test_creator_gets_role_31(self, api, admin, system):
        m = api.new_manager()
        pid = assert_ok(m.post("/project/create", {"name": uname()}))["content"]["id"]
        managers = assert_ok(m.get(f"/manager/list_for_project/{pid}"))["content"]["managers"]
        assert [(e["manager"]["id"], e["role"]) for e in managers] == [(m.id, 31)]
        assert managers[0]["manager"] == {"id": m.id, "username": m.username, "tracker_admin": False,
                                          "register_time": managers[0]["manager"]["register_time"]}
        assert system.sql("SELECT role FROM manager_role WHERE project_id = %s", pid) == [(31,)]
        # and the role is real: the creator may edit and manage access right away
        assert_ok(m.post(f"/project/update/{pid}", {"motd": "mine"}))
        assert_ok(m.get(f"/project/access_list/{pid}"))

    def test_non_admin_may_create_private_and_hidden(self, api):
        m = api.new_manager()
        for hidden in (False, True):
            pid = assert_ok(m.post("/project/create", {"name": uname(), "hidden": hidden}))["content"]["id"]
            assert get_project(m, pid)["hidden"] is hidden

    def test_anonymous_401(self, api, system):
        name = uname()
        assert_error(api.post("/project/create", {"name": name}), 401)
        assert system.sql("SELECT id FROM project WHERE name = %s", name) == []

    def test_invalid_cookie_is_401(self, system):
        stranger = Api(system.url)
        stranger.http.cookies.set("tt", "not-a-session")
        assert_error(stranger.post("/project/create", {"name": uname()}), 401)

    def test_worker_is_401(self, api):
        assert_error(api.new_worker().post("/project/create", {"name": uname()}), 401)

    @pytest.mark.parametrize(("field", "value"), [
        ("name", ""),
        ("name", 123),
        ("name", ["x"]),
        ("name", "a\x00b"),
        ("priority", -1),
        ("priority", 1 << 31),
        ("priority", "1"),
        ("priority", 1.0),
        ("priority", 1.5),
        ("priority", True),
        ("public", "true"),
        ("public", 1),
        ("hidden", 0),
        ("chain", -1),
        ("chain", "1"),
        ("chain", 1 << 63),
        ("assign_rate", -1),
        ("assign_rate", -0.001),
        ("submit_rate", -2.5),
        ("assign_rate", "1"),
        ("submit_rate", True),
        ("assign_rate", 5e-324),  # §6.4: 0 or 0.001 … 1,000,000
        ("assign_rate", 0.0009),
        ("submit_rate", 1e-9),
        ("submit_rate", 1_000_000.5),
        ("clone_url", 5),
        ("git_repo", False),
        ("version", {"v": 1}),
        ("motd", 1.5),
        ("name", "n" * 257),  # §1.1 lengths, in characters
        ("clone_url", "c" * 2049),
        ("git_repo", "g" * 513),
        ("version", "v" * 257),
        ("motd", "m" * 4097),
    ])
    def test_invalid_field_400_names_it(self, admin, system, field, value):
        name = uname()
        body = {"name": name, field: value} if field != "name" else {"name": value}
        assert_error(admin.post("/project/create", body), 400, f"'{field}'")
        if field != "name":
            assert system.sql("SELECT id FROM project WHERE name = %s", name) == []

    def test_missing_name_400(self, admin):
        assert_error(admin.post("/project/create", {"motd": "no name"}), 400, "'name'")
        assert_error(admin.post("/project/create"), 400, "'name'")

    @pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"name"', b"42"])
    def test_malformed_body_400(self, admin, raw):
        assert_error(admin.post("/project/create", raw=raw), 400)

    def test_form_content_type_is_parsed_as_json(self, admin):
        name = uname()
        r = admin.post("/project/create", raw=json.dumps({"name": name}),
                       headers={"Content-Type": "application/x-www-form-urlencoded"})
        pid = assert_ok(r)["content"]["id"]
        assert get_project(admin, pid)["name"] == name

    def test_public_and_hidden_400(self, admin, system):
        name = uname()
        body = assert_error(admin.post("/project/create", {"name": name, "public": True, "hidden": True}), 400)
        assert "hidden" in body["message"] or "public" in body["message"]
        assert system.sql("SELECT id FROM project WHERE name = %s", name) == []

    def test_largest_priority_and_zero_rates_accepted(self, admin):
        pid = assert_ok(admin.post("/project/create", {"name": uname(), "priority": (1 << 31) - 1,
                                                       "assign_rate": 0, "submit_rate": 0.0}))["content"]["id"]
        p = get_project(admin, pid)
        assert p["priority"] == (1 << 31) - 1 and p["assign_rate"] == 0 and p["submit_rate"] == 0

    def test_rate_and_length_bounds_accepted(self, admin):
        fields = {"name": uname() + "n" * 240, "clone_url": "c" * 2048, "git_repo": "g" * 512, "version": "v" * 256,
                  "motd": "m" * 4096, "assign_rate": 0.001, "submit_rate": 1_000_000}
        pid = assert_ok(admin.post("/project/create", fields))["content"]["id"]
        p = get_project(admin, pid)
        assert {k: p[k] for k in fields} == fields

    def test_unknown_chain_400_names_chain(self, admin, system):
        name = uname()
        assert_error(admin.post("/project/create", {"name": name, "chain": UNKNOWN}), 400, "'chain'")
        assert system.sql("SELECT id FROM project WHERE name = %s", name) == []

    def test_public_by_non_admin_403(self, api, system):
        m = api.new_manager()
        name = uname()
        assert_error(m.post("/project/create", {"name": name, "public": True}), 403)
        assert system.sql("SELECT id FROM project WHERE name = %s", name) == []

    def test_public_false_by_non_admin_is_fine(self, api):
        m = api.new_manager()
        assert_ok(m.post("/project/create", {"name": uname(), "public": False}))

    def test_public_by_admin(self, admin):
        pid = assert_ok(admin.post("/project/create", {"name": uname(), "public": True}))["content"]["id"]
        assert get_project(admin, pid)["public"] is True

    @pytest.mark.parametrize("role", [0, READ, ALL & ~EDIT])
    def test_chain_without_edit_on_target_403(self, make_project, manager_with_role, system, role):
        target = make_project()
        m = manager_with_role(target, role)
        name = uname()
        assert_error(m.post("/project/create", {"name": name, "chain": target}), 403)
        assert system.sql("SELECT id FROM project WHERE name = %s", name) == []

    def test_chain_with_edit_on_target(self, make_project, manager_with_role):
        target = make_project()
        m = manager_with_role(target, EDIT)
        pid = assert_ok(m.post("/project/create", {"name": uname(), "chain": target}))["content"]["id"]
        assert get_project(m, pid)["chain"] == target

    def test_duplicate_name_409(self, admin, api, system):
        name = uname()
        first = assert_ok(admin.post("/project/create", {"name": name}))["content"]["id"]
        assert_error(admin.post("/project/create", {"name": name, "motd": "second"}), 409)
        assert_error(api.new_manager().post("/project/create", {"name": name}), 409)
        assert system.sql("SELECT id, motd FROM project WHERE name = %s", name) == [(first, "")]

    def test_names_are_case_sensitive(self, admin):
        name = uname("Case")
        assert_ok(admin.post("/project/create", {"name": name}))
        assert_ok(admin.post("/project/create", {"name": name.lower()}))

    def test_duplicate_name_leaves_no_role_behind(self, api, admin, system):
        name = uname()
        assert_ok(admin.post("/project/create", {"name": name}))
        m = api.new_manager()
        assert_error(m.post("/project/create", {"name": name}), 409)
        assert system.sql("SELECT count(*) FROM manager_role WHERE manager_id = %s", m.id) == [(0,)]


# --- /project/get/:id ---------------------------------------------------------------------------
class TestGet:
    def test_shape_under_content_project(self, api, make_project):
        pid = make_project(motd="hi", version="v1")
        body = assert_ok(api.get(f"/project/get/{pid}"))
        assert set(body["content"]) == {"project"}
        p = body["content"]["project"]
        assert set(p) == PROJECT_KEYS
        assert p["id"] == pid and p["motd"] == "hi" and p["version"] == "v1"
        assert "secret" not in p and "webhook_secret" not in p

    def test_zero_means_unlimited_rates(self, api, make_project):
        p = get_project(api, make_project())
        assert p["assign_rate"] == 0 and p["submit_rate"] == 0
        assert p["assign_rate"] < 1e300  # never the original's math.MaxFloat64

    def test_closed_task_count_counts_closures(self, api, admin, make_project, grant):
        pid = make_project()
        w = api.new_worker()
        grant(w, pid)
        for i in range(2):
            assert_ok(w.post("/task/submit", {"project": pid, "recipe": f"r{i}"}))
        assert get_project(api, pid)["closed_task_count"] == 0
        for expected in (1, 2):
            task = assert_ok(w.get(f"/task/get/{pid}"))["content"]["task"]
            assert assert_ok(w.post("/task/release", {"task_id": task["id"], "result": 0}))["content"]["updated"]
            assert get_project(api, pid)["closed_task_count"] == expected

    @pytest.mark.parametrize("bad", ["abc", "0", "-1", "1.5", "9223372036854775808", "1e3", "%20"])
    def test_bad_id_400(self, api, bad):
        assert_error(api.get(f"/project/get/{bad}"), 400, "'id'")

    def test_largest_id_is_syntax_ok_and_unknown(self, api):
        assert_error(api.get(f"/project/get/{(1 << 63) - 1}"), 404)

    def test_unknown_404(self, api, admin):
        assert_error(api.get(f"/project/get/{UNKNOWN}"), 404)
        assert_error(admin.get(f"/project/get/{UNKNOWN}"), 404)

    def test_post_is_405(self, api, make_project):
        r = api.post(f"/project/get/{make_project()}")
        assert r.status_code == 405


# --- /project/list ------------------------------------------------------------------------------
class TestList:
    def names(self, client: Api) -> list[str]:
        body = assert_ok(client.get("/project/list"))
        projects = body["content"]["projects"]
        assert isinstance(projects, list)
        for p in projects:
            assert set(p) == PROJECT_KEYS
        return [p["name"] for p in projects]

    def test_code_point_order(self, api, make_project):
        tag = uuid.uuid4().hex[:8]
        mine = [f"a{tag}", f"B{tag}", f"é{tag}", f"_{tag}", f"Z{tag}", f"b{tag}"]
        for name in mine:
            make_project(name=name)
        names = self.names(api)
        assert names == sorted(names)  # Python compares str by code point, like COLLATE "C"
        assert [n for n in names if n.endswith(tag)] == [f"B{tag}", f"Z{tag}", f"_{tag}", f"a{tag}",
                                                         f"b{tag}", f"é{tag}"]

    def test_items_equal_get(self, api, make_project):
        pid = make_project(motd="listed", priority=3)
        listed = [p for p in assert_ok(api.get("/project/list"))["content"]["projects"] if p["id"] == pid]
        assert listed == [get_project(api, pid)]

    def test_hidden_only_for_read_role_and_admins(self, api, admin, make_project, manager_with_role, grant):
        hidden = make_project(hidden=True)
        private = make_project()
        public = make_project(public=True)
        h_name, p_name, pub_name = (get_project(admin, i)["name"] for i in (hidden, private, public))
        worker = api.new_worker()
        grant(worker, hidden)
        readers = [admin, manager_with_role(hidden, READ), manager_with_role(hidden, ALL)]
        others = [api, worker, manager_with_role(hidden, 0), manager_with_role(hidden, ALL & ~READ),
                  manager_with_role(private, ALL)]
        for client in readers:
            names = self.names(client)
            assert {h_name, p_name, pub_name} <= set(names)
        for client in others:
            names = self.names(client)
            assert {p_name, pub_name} <= set(names)
            assert h_name not in names

    def test_always_a_list(self, api):
        body = assert_ok(api.get("/project/list"))
        assert set(body["content"]) == {"projects"} and isinstance(body["content"]["projects"], list)


# --- /project/update/:id ------------------------------------------------------------------------
class TestUpdate:
    def test_partial_update_keeps_absent_fields(self, admin, make_project):
        chain = make_project()
        pid = make_project(clone_url="c", git_repo="g", version="v", motd="m", priority=9, chain=chain,
                           assign_rate=1.5, submit_rate=3, hidden=True)
        before = get_project(admin, pid)
        assert_ok(admin.post(f"/project/update/{pid}", {"motd": "new motd"}))
        after = get_project(admin, pid)
        assert after == {**before, "motd": "new motd"}
        assert_ok(admin.post(f"/project/update/{pid}", {}))
        assert get_project(admin, pid) == after
        assert_ok(admin.post(f"/project/update/{pid}"))
        assert get_project(admin, pid) == after

    def test_null_field_keeps_value(self, admin, make_project):
        pid = make_project(motd="kept")
        assert_ok(admin.post(f"/project/update/{pid}", {"motd": None, "priority": 4}))
        p = get_project(admin, pid)
        assert p["motd"] == "kept" and p["priority"] == 4

    def test_update_every_field(self, admin, make_project):
        pid = make_project()
        chain = make_project()
        fields = {"name": uname("renamed"), "clone_url": "cu", "git_repo": "o/r", "version": "v2", "motd": "m2",
                  "priority": 77, "public": True, "hidden": False, "chain": chain, "assign_rate": 0.25,
                  "submit_rate": 100, "paused": True}
        assert_ok(admin.post(f"/project/update/{pid}", fields))
        p = get_project(admin, pid)
        for key, value in fields.items():
            assert p[key] == value, key

    def test_secrets_untouched(self, admin, make_project, system):
        pid = make_project()
        before = system.sql("SELECT secret, webhook_secret FROM project WHERE id = %s", pid)
        assert_ok(admin.post(f"/project/update/{pid}", {"motd": "x", "secret": "s", "webhook_secret": "w"}))
        assert system.sql("SELECT secret, webhook_secret FROM project WHERE id = %s", pid) == before

    def test_paused_round_trip(self, admin, make_project):
        pid = make_project()
        assert_ok(admin.post(f"/project/update/{pid}", {"paused": True}))
        assert get_project(admin, pid)["paused"] is True
        assert_ok(admin.post(f"/project/update/{pid}", {"motd": "still paused"}))
        assert get_project(admin, pid)["paused"] is True
        assert_ok(admin.post(f"/project/update/{pid}", {"paused": False}))
        assert get_project(admin, pid)["paused"] is False

    @pytest.mark.parametrize("role", [0, READ, ALL & ~EDIT])
    def test_without_edit_403(self, make_project, manager_with_role, admin, role):
        pid = make_project(motd="orig")
        m = manager_with_role(pid, role)
        assert_error(m.post(f"/project/update/{pid}", {"motd": "changed"}), 403)
        assert get_project(admin, pid)["motd"] == "orig"

    def test_edit_only_suffices(self, make_project, manager_with_role, admin):
        pid = make_project()
        m = manager_with_role(pid, EDIT)
        assert_ok(m.post(f"/project/update/{pid}", {"motd": "by editor", "hidden": True}))
        p = get_project(admin, pid)
        assert p["motd"] == "by editor" and p["hidden"] is True

    def test_turning_public_on_by_non_admin_403(self, api, admin):
        m = api.new_manager()
        pid = assert_ok(m.post("/project/create", {"name": uname()}))["content"]["id"]
        assert_error(m.post(f"/project/update/{pid}", {"public": True, "motd": "x"}), 403)
        p = get_project(admin, pid)
        assert p["public"] is False and p["motd"] == ""

    def test_turning_public_on_by_admin(self, admin, make_project):
        pid = make_project()
        assert_ok(admin.post(f"/project/update/{pid}", {"public": True}))
        assert get_project(admin, pid)["public"] is True

    def test_non_admin_editor_of_public_project(self, admin, make_project, manager_with_role):
        pid = make_project(public=True)
        m = manager_with_role(pid, EDIT)
        assert_ok(m.post(f"/project/update/{pid}", {"public": True, "motd": "kept public"}))
        assert_ok(m.post(f"/project/update/{pid}", {"public": False}))
        assert get_project(admin, pid)["public"] is False
        assert_error(m.post(f"/project/update/{pid}", {"public": True}), 403)

    def test_public_and_hidden_after_merge_400(self, admin, make_project):
        hidden = make_project(hidden=True)
        body = assert_error(admin.post(f"/project/update/{hidden}", {"public": True}), 400)
        assert "hidden" in body["message"] or "public" in body["message"]
        public = make_project(public=True)
        assert_error(admin.post(f"/project/update/{public}", {"hidden": True}), 400)
        assert_error(admin.post(f"/project/update/{public}", {"public": True, "hidden": True}), 400)
        assert get_project(admin, hidden)["public"] is False
        assert get_project(admin, public)["hidden"] is False
        # switching both in one request is fine
        assert_ok(admin.post(f"/project/update/{public}", {"public": False, "hidden": True}))
        p = get_project(admin, public)
        assert p["public"] is False and p["hidden"] is True

    def test_chain_self_400(self, admin, make_project):
        pid = make_project()
        assert_error(admin.post(f"/project/update/{pid}", {"chain": pid}), 400, "'chain'")
        assert get_project(admin, pid)["chain"] == 0

    def test_chain_missing_400(self, admin, make_project):
        pid = make_project()
        assert_error(admin.post(f"/project/update/{pid}", {"chain": UNKNOWN}), 400, "'chain'")
        assert get_project(admin, pid)["chain"] == 0

    def test_chain_set_and_cleared(self, admin, make_project):
        pid, target = make_project(), make_project()
        assert_ok(admin.post(f"/project/update/{pid}", {"chain": target}))
        assert get_project(admin, pid)["chain"] == target
        assert_ok(admin.post(f"/project/update/{pid}", {"chain": 0}))
        assert get_project(admin, pid)["chain"] == 0

    def test_chain_target_without_edit_403(self, make_project, manager_with_role, admin):
        pid, target = make_project(), make_project()
        m = manager_with_role(pid, EDIT)
        set_role(admin, target, m, READ)
        assert_error(m.post(f"/project/update/{pid}", {"chain": target}), 403)
        assert get_project(admin, pid)["chain"] == 0
        set_role(admin, target, m, EDIT)
        assert_ok(m.post(f"/project/update/{pid}", {"chain": target}))
        assert get_project(admin, pid)["chain"] == target

    def test_permission_before_merged_validation(self, admin, make_project, manager_with_role):
        """§1.4: a 403 (step 7) beats a 400 that needs stored data (step 9)."""
        pid, target = make_project(public=True), make_project()
        m = manager_with_role(pid, EDIT)
        set_role(admin, target, m, READ)
        assert_error(m.post(f"/project/update/{pid}", {"hidden": True, "chain": target}), 403)
        assert_error(m.post(f"/project/update/{pid}", {"hidden": True, "chain": UNKNOWN}), 400)
        p = get_project(admin, pid)
        assert p["hidden"] is False and p["chain"] == 0

    def test_name_taken_409(self, admin, make_project):
        other_name = uname()
        make_project(name=other_name)
        pid = make_project(motd="orig")
        assert_error(admin.post(f"/project/update/{pid}", {"name": other_name, "motd": "x"}), 409)
        assert get_project(admin, pid)["motd"] == "orig"

    def test_rename_to_own_name_and_new_name(self, admin, make_project):
        name = uname()
        pid = make_project(name=name)
        assert_ok(admin.post(f"/project/update/{pid}", {"name": name}))
        new = uname()
        assert_ok(admin.post(f"/project/update/{pid}", {"name": new}))
        assert get_project(admin, pid)["name"] == new
        assert_ok(admin.post("/project/create", {"name": name}))  # the old name is free again

    @pytest.mark.parametrize(("field", "value"), [
        ("name", ""), ("priority", -1), ("priority", 1 << 31), ("assign_rate", -1), ("submit_rate", -0.5),
        ("paused", "yes"), ("public", 1), ("chain", -1), ("motd", 3), ("assign_rate", 5e-324),
        ("submit_rate", 2e6), ("name", "n" * 257), ("motd", "m" * 4097), ("version", "v" * 257),
    ])
    def test_invalid_field_400(self, admin, make_project, field, value):
        pid = make_project()
        before = get_project(admin, pid)
        assert_error(admin.post(f"/project/update/{pid}", {field: value}), 400, f"'{field}'")
        assert get_project(admin, pid) == before

    def test_unknown_404(self, admin, api):
        assert_error(admin.post(f"/project/update/{UNKNOWN}", {"motd": "x"}), 404)
        assert_error(api.new_manager().post(f"/project/update/{UNKNOWN}", {"motd": "x"}), 404)

    def test_anonymous_401(self, api, make_project, admin):
        pid = make_project()
        assert_error(api.post(f"/project/update/{pid}", {"motd": "x"}), 401)
        assert_error(api.post(f"/project/update/{UNKNOWN}", {"motd": "x"}), 401)
        assert get_project(admin, pid)["motd"] == ""

    def test_check_order(self, admin, api):
        # syntax (400) before existence (404); bad path id is 400 too
        assert_error(admin.post(f"/project/update/{UNKNOWN}", {"priority": -1}), 400, "'priority'")
        assert_error(admin.post("/project/update/0", {"motd": "x"}), 400, "'id'")
        # existence (404) before permission (403): a non-admin turning public on, unknown project
        assert_error(api.new_manager().post(f"/project/update/{UNKNOWN}", {"public": True}), 404)


# --- /project/request_access --------------------------------------------------------------------
class TestRequestAccess:
    @pytest.mark.parametrize(("assign", "submit"), [(True, False), (False, True), (True, True)])
    def test_creates_pending_request(self, api, make_project, system, assign, submit):
        pid = make_project()
        w = api.new_worker()
        body = assert_ok(w.post("/project/request_access", {"project": pid, "assign": assign, "submit": submit}))
        assert body == {"ok": True}
        assert access_row(system, w, pid) == (assign, submit, True)

    @pytest.mark.parametrize("body", [{}, {"assign": False}, {"assign": False, "submit": False},
                                      {"assign": None, "submit": None}])
    def test_neither_flag_400(self, api, make_project, system, body):
        pid = make_project()
        w = api.new_worker()
        assert_error(w.post("/project/request_access", {"project": pid, **body}), 400)
        assert access_row(system, w, pid) is None

    @pytest.mark.parametrize(("field", "value"), [("project", 0), ("project", "1"), ("assign", "true"),
                                                  ("submit", 1)])
    def test_bad_field_400(self, api, make_project, field, value):
        w = api.new_worker()
        body = {"project": make_project(), "assign": True, "submit": True, field: value}
        assert_error(w.post("/project/request_access", body), 400, f"'{field}'")

    def test_missing_project_400(self, api):
        assert_error(api.new_worker().post("/project/request_access", {"assign": True}), 400, "'project'")

    def test_unknown_project_404(self, api):
        assert_error(api.new_worker().post("/project/request_access", {"project": UNKNOWN, "assign": True}), 404)

    def test_second_request_409(self, api, make_project, system):
        pid = make_project()
        w = api.new_worker()
        assert_ok(w.post("/project/request_access", {"project": pid, "assign": True}))
        assert_error(w.post("/project/request_access", {"project": pid, "submit": True}), 409)
        assert access_row(system, w, pid) == (True, False, True)

    def test_already_granted_409(self, api, make_project, grant, system):
        pid = make_project()
        w = api.new_worker()
        grant(w, pid, assign=True, submit=False)
        assert_error(w.post("/project/request_access", {"project": pid, "assign": True, "submit": True}), 409)
        assert access_row(system, w, pid) == (True, False, False)

    @pytest.mark.parametrize("visibility", [{"public": True}, {}, {"hidden": True}])
    def test_allowed_on_every_visibility(self, api, make_project, system, visibility):
        pid = make_project(**visibility)
        w = api.new_worker()
        assert_ok(w.post("/project/request_access", {"project": pid, "submit": True}))
        assert access_row(system, w, pid) == (False, True, True)

    def test_other_workers_are_independent(self, api, make_project, system):
        pid = make_project()
        a, b = api.new_worker(), api.new_worker()
        assert_ok(a.post("/project/request_access", {"project": pid, "assign": True}))
        assert_ok(b.post("/project/request_access", {"project": pid, "assign": True}))

    def test_without_worker_credentials_401(self, api, admin, make_project):
        pid = make_project()
        assert_error(api.post("/project/request_access", {"project": pid, "assign": True}), 401)
        assert_error(admin.post("/project/request_access", {"project": pid, "assign": True}), 401)

    def test_wrong_secret_401(self, api, make_project, system):
        w = api.new_worker()
        forged = Api(api.base, {"X-Worker-ID": str(w.id), "X-Secret": api.new_worker().secret})
        pid = make_project()
        assert_error(forged.post("/project/request_access", {"project": pid, "assign": True}), 401)
        assert access_row(system, w, pid) is None


# --- /project/accept_request/:id/:wid -----------------------------------------------------------
class TestAcceptRequest:
    @pytest.mark.parametrize(("assign", "submit"), [(True, False), (False, True), (True, True)])
    def test_grants_requested_flags(self, api, admin, make_project, system, assign, submit):
        pid = make_project()
        w = api.new_worker()
        assert_ok(w.post("/project/request_access", {"project": pid, "assign": assign, "submit": submit}))
        assert assert_ok(admin.post(f"/project/accept_request/{pid}/{w.id}")) == {"ok": True}
        assert access_row(system, w, pid) == (assign, submit, False)

    def test_idempotent(self, api, admin, make_project, system):
        pid = make_project()
        w = api.new_worker()
        assert_ok(w.post("/project/request_access", {"project": pid, "assign": True}))
        for _ in range(3):
            assert_ok(admin.post(f"/project/accept_request/{pid}/{w.id}"))
            assert access_row(system, w, pid) == (True, False, False)

    def test_ignores_a_body(self, api, admin, make_project, system):
        pid = make_project()
        w = api.new_worker()
        assert_ok(w.post("/project/request_access", {"project": pid, "assign": True}))
        assert_ok(admin.post(f"/project/accept_request/{pid}/{w.id}", {"submit": True}))
        assert access_row(system, w, pid) == (True, False, False)

    def test_404s(self, api, admin, make_project):
        pid = make_project()
        w = api.new_worker()
        assert_error(admin.post(f"/project/accept_request/{UNKNOWN}/{w.id}"), 404)
        assert_error(admin.post(f"/project/accept_request/{pid}/{UNKNOWN}"), 404)
        assert_error(admin.post(f"/project/accept_request/{pid}/{w.id}"), 404)  # no row
        # a row on another project does not count
        other = make_project()
        assert_ok(w.post("/project/request_access", {"project": other, "assign": True}))
        assert_error(admin.post(f"/project/accept_request/{pid}/{w.id}"), 404)

    def test_bad_ids_400(self, admin, make_project):
        pid = make_project()
        assert_error(admin.post(f"/project/accept_request/{pid}/0"), 400, "'wid'")
        assert_error(admin.post(f"/project/accept_request/x/{pid}"), 400, "'id'")

    @pytest.mark.parametrize("role", [0, READ, ALL & ~MANAGE_ACCESS])
    def test_without_manage_access_403(self, api, make_project, manager_with_role, system, role):
        pid = make_project()
        w = api.new_worker()
        assert_ok(w.post("/project/request_access", {"project": pid, "assign": True}))
        m = manager_with_role(pid, role)
        assert_error(m.post(f"/project/accept_request/{pid}/{w.id}"), 403)
        assert access_row(system, w, pid) == (True, False, True)

    def test_manage_access_only_suffices(self, api, make_project, manager_with_role, system):
        pid = make_project()
        w = api.new_worker()
        assert_ok(w.post("/project/request_access", {"project": pid, "submit": True}))
        assert_ok(manager_with_role(pid, MANAGE_ACCESS).post(f"/project/accept_request/{pid}/{w.id}"))
        assert access_row(system, w, pid) == (False, True, False)

    def test_anonymous_401(self, api, make_project, system):
        pid = make_project()
        w = api.new_worker()
        assert_ok(w.post("/project/request_access", {"project": pid, "assign": True}))
        assert_error(api.post(f"/project/accept_request/{pid}/{w.id}"), 401)
        assert_error(w.post(f"/project/accept_request/{pid}/{w.id}"), 401)  # a worker cannot accept itself
        assert access_row(system, w, pid) == (True, False, True)


# --- /project/reject_request/:id/:wid -----------------------------------------------------------
class TestRejectRequest:
    def test_deletes_pending(self, api, admin, make_project, system):
        pid = make_project()
        w = api.new_worker()
        assert_ok(w.post("/project/request_access", {"project": pid, "assign": True}))
        assert assert_ok(admin.post(f"/project/reject_request/{pid}/{w.id}")) == {"ok": True}
        assert access_row(system, w, pid) is None
        # the worker may ask again afterwards
        assert_ok(w.post("/project/request_access", {"project": pid, "submit": True}))
        assert access_row(system, w, pid) == (False, True, True)

    def test_revokes_granted(self, api, admin, make_project, grant, system):
        pid = make_project()
        w = api.new_worker()
        grant(w, pid)
        assert_ok(admin.post(f"/project/reject_request/{pid}/{w.id}"))
        assert access_row(system, w, pid) is None
        accesses = assert_ok(admin.get(f"/project/access_list/{pid}"))["content"]["accesses"]
        assert accesses == []

    def test_404s(self, api, admin, make_project):
        pid = make_project()
        w = api.new_worker()
        assert_error(admin.post(f"/project/reject_request/{UNKNOWN}/{w.id}"), 404)
        assert_error(admin.post(f"/project/reject_request/{pid}/{UNKNOWN}"), 404)
        assert_error(admin.post(f"/project/reject_request/{pid}/{w.id}"), 404)
        assert_ok(w.post("/project/request_access", {"project": pid, "assign": True}))
        assert_ok(admin.post(f"/project/reject_request/{pid}/{w.id}"))
        assert_error(admin.post(f"/project/reject_request/{pid}/{w.id}"), 404)  # already gone

    @pytest.mark.parametrize("role", [0, ALL & ~MANAGE_ACCESS])
    def test_without_manage_access_403(self, api, make_project, manager_with_role, grant, system, role):
        pid = make_project()
        w = api.new_worker()
        grant(w, pid, assign=True, submit=False)
        assert_error(manager_with_role(pid, role).post(f"/project/reject_request/{pid}/{w.id}"), 403)
        assert access_row(system, w, pid) == (True, False, False)

    def test_manage_access_only_suffices(self, api, make_project, manager_with_role, grant, system):
        pid = make_project()
        w = api.new_worker()
        grant(w, pid)
        assert_ok(manager_with_role(pid, MANAGE_ACCESS).post(f"/project/reject_request/{pid}/{w.id}"))
        assert access_row(system, w, pid) is None

    def test_anonymous_401(self, api, make_project, grant, system):
        pid = make_project()
        w = api.new_worker()
        grant(w, pid)
        assert_error(api.post(f"/project/reject_request/{pid}/{w.id}"), 401)
        assert_error(w.post(f"/project/reject_request/{pid}/{w.id}"), 401)
        assert access_row(system, w, pid) == (True, True, False)


# --- /project/access_list/:id -------------------------------------------------------------------
class TestAccessList:
    def test_granted_first_then_pending_each_by_alias(self, api, admin, make_project, grant):
        pid = make_project()
        tag = uuid.uuid4().hex[:6]
        granted = {alias: api.new_worker(alias) for alias in (f"b{tag}", f"A{tag}", f"_{tag}")}
        pending = {alias: api.new_worker(alias) for alias in (f"a{tag}", f"C{tag}")}
        for alias, w in granted.items():
            grant(w, pid, assign=alias.startswith("A"), submit=not alias.startswith("A"))
        for w in pending.values():
            assert_ok(w.post("/project/request_access", {"project": pid, "assign": True, "submit": True}))
        body = assert_ok(admin.get(f"/project/access_list/{pid}"))
        assert set(body["content"]) == {"accesses"}
        accesses = body["content"]["accesses"]
        assert [a["worker"]["alias"] for a in accesses] == [f"A{tag}", f"_{tag}", f"b{tag}", f"C{tag}", f"a{tag}"]
        assert [a["request"] for a in accesses] == [False, False, False, True, True]
        for a in accesses:
            assert set(a) == ACCESS_KEYS
            assert set(a["worker"]) == WORKER_KEYS
            assert a["project"] == pid
            w = {**granted, **pending}[a["worker"]["alias"]]
            assert a["worker"]["id"] == w.id and a["worker"]["paused"] is False
            assert isinstance(a["worker"]["created"], int) and a["worker"]["created"] > 1_600_000_000
        assert (accesses[0]["assign"], accesses[0]["submit"]) == (True, False)
        assert (accesses[1]["assign"], accesses[1]["submit"]) == (False, True)
        assert (accesses[3]["assign"], accesses[3]["submit"]) == (True, True)

    def test_only_this_project(self, api, admin, make_project, grant):
        pid, other = make_project(), make_project()
        w = api.new_worker()
        grant(w, other)
        assert assert_ok(admin.get(f"/project/access_list/{pid}"))["content"]["accesses"] == []

    def test_accept_moves_row_to_granted(self, api, admin, make_project):
        pid = make_project()
        w = api.new_worker()
        assert_ok(w.post("/project/request_access", {"project": pid, "assign": True}))
        [row] = assert_ok(admin.get(f"/project/access_list/{pid}"))["content"]["accesses"]
        assert row["request"] is True
        assert_ok(admin.post(f"/project/accept_request/{pid}/{w.id}"))
        [row] = assert_ok(admin.get(f"/project/access_list/{pid}"))["content"]["accesses"]
        assert (row["assign"], row["submit"], row["request"]) == (True, False, False)

    @pytest.mark.parametrize("role", [0, READ, ALL & ~MANAGE_ACCESS])
    def test_without_manage_access_403(self, make_project, manager_with_role, role):
        pid = make_project()
        assert_error(manager_with_role(pid, role).get(f"/project/access_list/{pid}"), 403)

    def test_manage_access_only_suffices(self, make_project, manager_with_role):
        pid = make_project()
        assert_ok(manager_with_role(pid, MANAGE_ACCESS).get(f"/project/access_list/{pid}"))

    def test_anonymous_401_and_worker_401(self, api, make_project, grant):
        pid = make_project()
        w = api.new_worker()
        grant(w, pid)
        assert_error(api.get(f"/project/access_list/{pid}"), 401)
        assert_error(w.get(f"/project/access_list/{pid}"), 401)

    def test_unknown_404_bad_id_400(self, admin):
        assert_error(admin.get(f"/project/access_list/{UNKNOWN}"), 404)
        assert_error(admin.get("/project/access_list/abc"), 400, "'id'")


# --- /manager/list_for_project/:id --------------------------------------------------------------
class TestManagersForProject:
    def test_any_manager_sees_roles_ordered_by_id(self, api, admin, make_project):
        pid = make_project()
        ms = [api.new_manager() for _ in range(3)]
        set_role(admin, pid, ms[2], READ)
        set_role(admin, pid, ms[0], EDIT | MANAGE_ACCESS)
        outsider = api.new_manager()  # no role at all, still allowed (as original)
        body = assert_ok(outsider.get(f"/manager/list_for_project/{pid}"))
        assert set(body["content"]) == {"managers"}
        entries = body["content"]["managers"]
        assert [(e["manager"]["id"], e["role"]) for e in entries] == [(admin.id, 31), (ms[0].id, 6), (ms[2].id, 1)]
        for e in entries:
            assert set(e) == {"manager", "role"}
            assert set(e["manager"]) == MANAGER_KEYS
        assert entries[0]["manager"]["tracker_admin"] is True
        assert entries[1]["manager"]["username"] == ms[0].username
        assert entries[1]["manager"]["tracker_admin"] is False

    def test_zero_role_not_listed(self, api, admin, make_project, system):
        pid = make_project()
        m = api.new_manager()
        set_role(admin, pid, m, READ)
        system.sql("UPDATE manager_role SET role = 0 WHERE manager_id = %s AND project_id = %s", m.id, pid)
        entries = assert_ok(admin.get(f"/manager/list_for_project/{pid}"))["content"]["managers"]
        assert m.id not in [e["manager"]["id"] for e in entries]

    def test_unknown_project_404(self, api):
        assert_error(api.new_manager().get(f"/manager/list_for_project/{UNKNOWN}"), 404)

    def test_bad_id_400(self, admin):
        assert_error(admin.get("/manager/list_for_project/-3"), 400, "'id'")

    def test_anonymous_401_worker_401(self, api, make_project):
        pid = make_project()
        assert_error(api.get(f"/manager/list_for_project/{pid}"), 401)
        assert_error(api.new_worker().get(f"/manager/list_for_project/{pid}"), 401)


# --- /manager/set_role_for_project/:id ----------------------------------------------------------
class TestSetRole:
    def roles(self, admin: Api, pid: int) -> dict[int, int]:
        entries = assert_ok(admin.get(f"/manager/list_for_project/{pid}"))["content"]["managers"]
        return {e["manager"]["id"]: e["role"] for e in entries}

    def test_set_change_remove(self, api, admin, make_project):
        pid = make_project()
        m = api.new_manager()
        body = assert_ok(admin.post(f"/manager/set_role_for_project/{pid}", {"manager": m.id, "role": READ}))
        assert body == {"ok": True}
        assert self.roles(admin, pid)[m.id] == READ
        assert_ok(admin.post(f"/manager/set_role_for_project/{pid}", {"manager": m.id, "role": 31}))
        assert self.roles(admin, pid)[m.id] == 31
        assert_ok(admin.post(f"/manager/set_role_for_project/{pid}", {"manager": m.id, "role": 0}))
        assert m.id not in self.roles(admin, pid)
        # removing a role nobody has is fine
        assert_ok(admin.post(f"/manager/set_role_for_project/{pid}", {"manager": m.id, "role": 0}))

    def test_role_takes_effect_at_once(self, api, admin, make_project):
        pid = make_project(hidden=True)
        m = api.new_manager()
        assert_error(m.get(f"/project/get/{pid}"), 403)
        set_role(admin, pid, m, READ)
        assert_ok(m.get(f"/project/get/{pid}"))
        set_role(admin, pid, m, 0)
        assert_error(m.get(f"/project/get/{pid}"), 403)

    @pytest.mark.parametrize(("body", "field"), [
        ({"role": 32}, "role"), ({"role": -1}, "role"), ({"role": "1"}, "role"), ({"role": 1.0}, "role"),
        ({"role": None}, "role"), ({"manager": 0}, "manager"), ({"manager": "1"}, "manager"),
        ({"manager": None}, "manager"),
    ])
    def test_bad_fields_400(self, api, admin, make_project, body, field):
        pid = make_project()
        m = api.new_manager()
        full = {"manager": m.id, "role": 1, **body}
        full = {k: v for k, v in full.items() if v is not None}
        assert_error(admin.post(f"/manager/set_role_for_project/{pid}", full), 400, f"'{field}'")
        assert m.id not in self.roles(admin, pid)

    def test_unknown_manager_or_project_404(self, api, admin, make_project):
        pid = make_project()
        m = api.new_manager()
        assert_error(admin.post(f"/manager/set_role_for_project/{pid}", {"manager": UNKNOWN, "role": 1}), 404)
        assert_error(admin.post(f"/manager/set_role_for_project/{UNKNOWN}", {"manager": m.id, "role": 1}), 404)

    @pytest.mark.parametrize("role", [0, READ, ALL & ~MANAGE_ACCESS])
    def test_without_manage_access_403(self, api, make_project, manager_with_role, admin, role):
        pid = make_project()
        m = manager_with_role(pid, role)
        # not even to raise its own role
        assert_error(m.post(f"/manager/set_role_for_project/{pid}", {"manager": m.id, "role": 31}), 403)
        assert self.roles(admin, pid).get(m.id, 0) == role

    def test_manage_access_only_suffices(self, api, make_project, manager_with_role, admin):
        pid = make_project()
        m = manager_with_role(pid, MANAGE_ACCESS)
        other = api.new_manager()
        assert_ok(m.post(f"/manager/set_role_for_project/{pid}", {"manager": other.id, "role": MANAGE_ACCESS}))
        assert self.roles(admin, pid)[other.id] == MANAGE_ACCESS
        # but only the bits it holds (§6.2; tests/security/test_review_manager.py has the rest)
        assert_error(m.post(f"/manager/set_role_for_project/{pid}", {"manager": other.id, "role": EDIT}), 403)
        assert self.roles(admin, pid)[other.id] == MANAGE_ACCESS

    def test_anonymous_401(self, api, make_project, admin):
        pid = make_project()
        m = api.new_manager()
        assert_error(api.post(f"/manager/set_role_for_project/{pid}", {"manager": m.id, "role": 1}), 401)
        assert m.id not in self.roles(admin, pid)


# --- access changes are visible on the very next request ----------------------------------------
class TestAccessTakesEffectAtOnce:
    def test_accept_then_reject(self, api, admin, make_project, system):
        pid = make_project()
        for i in range(3):
            seed_task(system, pid, f"recipe-{i}")
        w = api.new_worker()
        assert_error(w.get(f"/task/get/{pid}"), 403)
        assert_ok(w.post("/project/request_access", {"project": pid, "assign": True}))
        assert_error(w.get(f"/task/get/{pid}"), 403)  # pending grants nothing
        assert_ok(admin.post(f"/project/accept_request/{pid}/{w.id}"))
        task = assert_ok(w.get(f"/task/get/{pid}"))["content"]["task"]
        assert task["project"]["id"] == pid and task["assignee"] == w.id
        assert_ok(admin.post(f"/project/reject_request/{pid}/{w.id}"))
        assert_error(w.get(f"/task/get/{pid}"), 403)

    def test_repeatedly_across_replicas(self, api, admin, make_project, system):
        """Several gateway processes and task_svc replicas: no process may keep a stale grant."""
        pid = make_project()
        for i in range(8):
            seed_task(system, pid, f"r{i}")
        w = api.new_worker()
        for _ in range(4):
            assert_ok(w.post("/project/request_access", {"project": pid, "submit": True}))
            assert_ok(admin.post(f"/project/accept_request/{pid}/{w.id}"))
            assert_ok(w.get(f"/task/get/{pid}"))
            assert_ok(w.post("/task/submit", {"project": pid, "recipe": "x"}))
            assert_ok(admin.post(f"/project/reject_request/{pid}/{w.id}"))
            assert_error(w.get(f"/task/get/{pid}"), 403)
            assert_error(w.post("/task/submit", {"project": pid, "recipe": "x"}), 403)


# --- races: the database decides, never a check-then-write ---------------------------------------
class TestRaces:
    def test_concurrent_creates_of_one_name(self, admin, system):
        name = uname("race")
        with ThreadPoolExecutor(8) as pool:
            codes = sorted(pool.map(lambda _: admin.post("/project/create", {"name": name}).status_code, range(8)))
        assert codes == [200] + [409] * 7
        assert len(system.sql("SELECT id FROM project WHERE name = %s", name)) == 1

    def test_concurrent_renames_to_one_name(self, admin, make_project, system):
        for _ in range(3):
            ids = [make_project() for _ in range(8)]
            name = uname("race")
            with ThreadPoolExecutor(8) as pool:
                codes = sorted(pool.map(
                    lambda pid, name=name: admin.post(f"/project/update/{pid}", {"name": name}).status_code, ids))
            assert codes == [200] + [409] * 7
            assert len(system.sql("SELECT id FROM project WHERE name = %s", name)) == 1

    def test_concurrent_access_requests(self, api, make_project, system):
        pid = make_project()
        w = api.new_worker()
        with ThreadPoolExecutor(6) as pool:
            codes = sorted(pool.map(lambda _: w.post("/project/request_access",
                                                     {"project": pid, "assign": True}).status_code, range(6)))
        assert codes == [200] + [409] * 5
