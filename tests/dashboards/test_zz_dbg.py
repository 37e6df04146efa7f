from tests.dashboards.conftest import *
def test_dbg(app_db):
    at = page_test("account").run()
    at.text_input(key="login_username").input("lena")
    at.text_input(key="login_password").input(PASSWORD)
    at.button(key="login_submit").click()
    at.run()
    print("SS", list(at.session_state))
    print("T", [t.value for t in at.title], at.exception, at.error)
def test_dbg3(app_db):
    at = app_test().run()
    at.button(key="login_submit").click()
    at.run()
    print("SS3", list(at.session_state))
    print("T3", [t.value for t in at.title], at.exception, at.error)
