/*
 * web-page: serve's self-contained demo page (HTML with inline CSS and
 * JavaScript, no external resources).  It talks to the same server through
 * relative URLs: GET api/health for the model and limits, POST
 * api/translate?direction=young2old|old2young with the picture as the body.
 */
#pragma once

extern const char web_page_html[];
