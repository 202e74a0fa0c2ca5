"""A person's whole visit, in a real browser: sign in, drop two files and watch them upload,
search by prompt, open one, make it public and see its share page signed out, delete one."""
from __future__ import annotations

import base64
import io
import os
import re

import pytest
from PIL import Image

from tests.browser.conftest import PASSWORD

pytestmark = pytest.mark.browser

DROP = """async ([files, prompt]) => {
  document.querySelector('#prompt').value = prompt;
  const transfer = new DataTransfer();
  for (const [name, b64] of files) {
    const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
    transfer.items.add(new File([bytes], name, {type: 'image/png'}));
  }
  const zone = document.querySelector('#dropzone');
  zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: transfer, bubbles: true, cancelable: true}));
  zone.dispatchEvent(new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true}));
}"""


def image(color: tuple[int, int, int]) -> str:
    """A 640×400 PNG fading from `color` to white, with a unique tail (a new SHA-256 every run)."""
    fade = Image.linear_gradient("L").resize((640, 400)).rotate(90, expand=False)
    picture = Image.composite(Image.new("RGB", (640, 400), color), Image.new("RGB", (640, 400), "white"), fade)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue() + os.urandom(32)).decode()


def sign_in(page, url: str) -> None:  # noqa: ANN001
    page.goto(f"{url}/sign-in")
    page.fill("#id_username", "ada")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/")


def test_a_person_uploads_searches_shares_and_deletes(browser, web_server, screenshot):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.goto(f"{web_server}/sign-in")
    screenshot(page, "sign-in")
    sign_in(page, web_server)
    assert page.locator("text=Nothing here yet").is_visible()
    screenshot(page, "gallery-empty")

    # Two files dropped on the drop zone; each shows a progress bar that reaches the end.
    page.goto(f"{web_server}/upload")
    page.wait_for_selector("#upload[data-ready]")
    page.evaluate(DROP, [[["fox.png", image((200, 80, 20))], ["whale.png", image((30, 60, 200))]], ""])
    page.wait_for_selector(".upload.done >> nth=1", timeout=30_000)
    assert page.locator(".upload.done").count() == 2
    assert page.eval_on_selector_all(".upload progress", "bars => bars.map(b => b.value)") == [100, 100]
    page.evaluate(DROP, [[["fox-at-dawn.png", image((230, 120, 40))]], "a red fox in the snow at dawn"])
    page.wait_for_selector(".upload.done >> nth=2", timeout=30_000)
    page.evaluate(DROP, [[["empty.png", ""]], ""])  # a refusal, said in words next to the file
    assert page.wait_for_selector(".upload.failed .status").inner_text() == "This file is empty."
    screenshot(page, "upload")

    # The gallery: three thumbnails that load; a prompt search finds the fox.
    page.goto(f"{web_server}/")
    page.wait_for_function("[...document.querySelectorAll('.grid img')].every(i => i.complete && i.naturalWidth > 0)")
    assert page.locator(".grid .tile").count() == 3
    screenshot(page, "gallery")
    page.fill("input[name=search]", "fox")
    page.press("input[name=search]", "Enter")
    page.wait_for_url(re.compile(r".*search=fox.*"))
    tiles = page.locator(".grid .tile img")
    assert tiles.count() == 1
    assert tiles.first.get_attribute("alt") == "a red fox in the snow at dawn"

    # Its detail page; make it public; its share page, signed out.
    tiles.first.click()
    page.wait_for_url(re.compile(r".*/m/[^/]+$"))
    media_id = page.url.rsplit("/", 1)[1]
    assert page.locator("dd code").inner_text().strip().__len__() == 64  # the SHA-256
    page.click("text=Make public")
    page.wait_for_selector("text=Anyone with the share link can now see this file.")
    page.select_option("#id_ttl", "3600")
    page.click("text=Make a link")
    assert "/files/" in page.input_value("#signed-url")
    screenshot(page, "detail")

    stranger = browser.new_context(viewport={"width": 1200, "height": 800}).new_page()
    stranger.goto(f"{web_server}/p/{media_id}")
    stranger.wait_for_function("document.querySelector('.share img').naturalWidth > 0")
    assert stranger.locator("meta[property='og:title']").get_attribute("content") == "a red fox in the snow at dawn"
    screenshot(stranger, "share")

    # The account page; then delete the whale, with a confirmation.
    page.goto(f"{web_server}/account")
    page.fill("#id_name", "laptop")
    page.click("text=Create a key")
    assert page.input_value("#new-secret").startswith("msk_")
    screenshot(page, "account")
    page.goto(f"{web_server}/")
    page.click("a[title='whale.png']")
    page.click("text=Delete…")
    screenshot(page, "delete")
    page.click("button:has-text('Delete')")
    page.wait_for_url(f"{web_server}/")
    assert page.locator("text=whale.png was deleted.").is_visible()
    assert page.locator(".grid .tile").count() == 2

    # Phone width: the same gallery in one or two columns.
    phone = browser.new_context(viewport={"width": 390, "height": 844}, storage_state=context.storage_state())
    mobile = phone.new_page()
    mobile.goto(f"{web_server}/")
    mobile.wait_for_function("[...document.querySelectorAll('.grid img')].every(i => i.complete && i.naturalWidth > 0)")
    screenshot(mobile, "gallery-phone")
    context.close()


def test_signed_out_a_private_file_is_the_same_not_found_page(browser, web_server):
    page = browser.new_context().new_page()
    response = page.goto(f"{web_server}/p/med_unknown")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "Not found"


def test_the_keyboard_reaches_the_drop_zone_and_opens_the_file_picker(browser, web_server):
    page = browser.new_context().new_page()
    sign_in(page, web_server)
    page.goto(f"{web_server}/upload")
    page.wait_for_selector("#upload[data-ready]")
    page.evaluate("document.querySelector('#files').addEventListener('click', () => { window.picked = true; })")
    for _ in range(12):  # Tab through the page until the drop zone has the focus
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "dropzone":
            break
    assert page.evaluate("document.activeElement.id") == "dropzone"
    page.keyboard.press("Enter")
    page.wait_for_function("window.picked === true", timeout=5_000)
