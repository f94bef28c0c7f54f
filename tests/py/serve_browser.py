"""Drive serve's page in a real headless Chromium, as a person would.

  serve_browser.py URL FACE OUTDIR SIZE DIRECTION [EXPECTED.png]

Opens URL, waits for the model line (from /api/health), chooses FACE with
the file input, picks DIRECTION (young2old|old2young), presses Translate and
waits for the result image.  Checks: its natural size is SIZE x SIZE, it
differs from the input (it has the input's size), it equals EXPECTED.png byte for byte
when given (what `translate` writes), the download link points at it, and
the page fits a phone-sized window without sideways scrolling.  Then a
non-image file must give an error message on the page.  Writes OUTDIR/
serve.png (desktop screenshot), serve-phone.png, result.png and browser.log.
Exit 0 when every check passes; 77 when Chromium or Selenium is missing.
"""
import base64
import io
import os
import shutil
import signal
import sys
import time

URL, FACE, OUT, SIZE, DIRECTION = sys.argv[1], os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
EXPECTED = sys.argv[6] if len(sys.argv) > 6 else None

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError as e:
    print("skip: python3-selenium is not installed (%s)" % e)
    sys.exit(77)
from PIL import Image, ImageChops, ImageStat

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None)
if not CHROMIUM or not DRIVER:
    print("skip: chromium or chromium-driver is not installed")
    sys.exit(77)


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


# `timeout` sends SIGTERM: turn it into an exception so that finally quits the browser.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(124))

opts = Options()
opts.binary_location = CHROMIUM
for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
          "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
          "--user-data-dir=" + os.path.join(OUT, "profile"), "--window-size=1000,1000"):
    opts.add_argument(a)
service = Service(DRIVER, log_path=os.path.join(OUT, "chromedriver.log"))
driver = webdriver.Chrome(service=service, options=opts)
try:
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    driver.get(URL)
    wait = WebDriverWait(driver, 30)
    wait.until(lambda d: "filters" in d.find_element(By.ID, "model").text)
    print("page: %s; %s" % (driver.title, driver.find_element(By.ID, "model").text))
    if not driver.find_element(By.ID, "go").get_attribute("disabled"):
        fail("Translate is enabled before a picture is chosen")

    driver.find_element(By.ID, "file").send_keys(FACE)
    wait.until(lambda d: d.execute_script("var i = document.getElementById('in'); return i && i.naturalWidth > 0;"))
    driver.find_element(By.CSS_SELECTOR, "input[name=direction][value=%s]" % DIRECTION).click()
    t0 = time.time()
    driver.find_element(By.ID, "go").click()
    size = WebDriverWait(driver, 90).until(lambda d: d.execute_script(
        "var i = document.getElementById('out');"
        "return i && i.complete && i.naturalWidth > 0 ? [i.naturalWidth, i.naturalHeight, i.dataset.direction] : null;"))
    print("result: %dx%d %s after %.2f s; status: %s" % (size[0], size[1], size[2], time.time() - t0,
                                                          driver.find_element(By.ID, "status").text))
    if size[:2] != [SIZE, SIZE]:
        fail("result is %dx%d, expected %dx%d" % (size[0], size[1], SIZE, SIZE))
    if size[2] != DIRECTION:
        fail("result is for %s, expected %s" % (size[2], DIRECTION))

    # The result's bytes, read back from its blob: URL inside the page.
    b64 = driver.execute_async_script(
        "var cb = arguments[arguments.length - 1];"
        "fetch(document.getElementById('out').src).then(function (r) { return r.blob(); }).then(function (b) {"
        "  var f = new FileReader(); f.onload = function () { cb(f.result.split(',')[1]); }; f.readAsDataURL(b);"
        "}).catch(function (e) { cb('ERR ' + e); });")
    if b64.startswith("ERR"):
        fail("could not read the result back: " + b64)
    png = base64.b64decode(b64)
    with open(os.path.join(OUT, "result.png"), "wb") as f:
        f.write(png)
    if EXPECTED and open(EXPECTED, "rb").read() != png:
        fail("the page's result differs from translate's output")
    res = Image.open(io.BytesIO(png)).convert("RGB")
    inp = Image.open(FACE).convert("RGB")  # the result is the input's size: lib/face/paste.h
    diff = sum(ImageStat.Stat(ImageChops.difference(res, inp)).mean) / 3
    print("mean |result - input| = %.1f / 255" % diff)
    if diff < 1:
        fail("the result is the input")

    dl = driver.find_element(By.ID, "dl")
    if not dl.is_displayed() or dl.get_attribute("href") != driver.find_element(By.ID, "out").get_attribute("src"):
        fail("the download link is hidden or points elsewhere")
    if not dl.get_attribute("download").endswith("-%s.png" % DIRECTION):
        fail("download name: %s" % dl.get_attribute("download"))
    driver.save_screenshot(os.path.join(OUT, "serve.png"))

    driver.set_window_size(390, 844)  # a phone
    time.sleep(0.3)
    sw = driver.execute_script("return [document.documentElement.scrollWidth, window.innerWidth];")
    driver.save_screenshot(os.path.join(OUT, "serve-phone.png"))
    if sw[0] > sw[1]:
        fail("the page scrolls sideways on a phone: %d > %d px" % tuple(sw))

    # An unreadable file gives a message, not a broken page, and cannot be sent.
    bogus = os.path.join(OUT, "not-a-face.png")
    with open(bogus, "w") as f:
        f.write("this is not a picture\n")
    driver.find_element(By.ID, "file").send_keys(bogus)
    WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "status").get_attribute("class") == "error")
    print("bad file: %s" % driver.find_element(By.ID, "status").text)
    if "cannot be shown" not in driver.find_element(By.ID, "status").text:
        fail("unexpected error text")
    if not driver.find_element(By.ID, "go").get_attribute("disabled"):
        fail("Translate is enabled for a file that cannot be shown")
    broken = driver.execute_script(
        "return Array.from(document.images).filter(function (i) { return i.complete && i.naturalWidth === 0; }).length;")
    if broken:
        fail("%d broken image(s) on the page after the error" % broken)
    if driver.find_element(By.ID, "dl").is_displayed():
        fail("the download link of the earlier result is still offered after the error")
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "api/translate" not in e["message"]]
    if errors:
        fail("console errors: %s" % errors)
    print("OK")
finally:
    driver.quit()
