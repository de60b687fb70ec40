/*
 * unit-form.c: finding the model field of a multipart/form-data body,
 * and refusing every form that could be read two ways.
 */
#include <string.h>

#include "form.h"
#include "tap.h"

#define CT	"multipart/form-data; boundary=XyZ"

/* A form is read; want is the model, or NULL when it must be refused. */
static void
check(const char *what, const char *ctype, const char *body,
    const char *want)
{
	char	out[64], err[128];
	int	rc;

	out[0] = '\0';
	rc = form_model(ctype, body, strlen(body), out, sizeof out, err,
	    sizeof err);
	if (want != NULL)
		tap_ok(rc == 0 && strcmp(out, want) == 0, "%s: '%s' (%s)",
		    what, out, rc == 0 ? "read" : err);
	else
		tap_ok(rc == -1, "%s: refused (%s)", what, rc == 0 ? out : err);
}

int
main(void)
{
	check("plain form", CT,
	    "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; "
	    "filename=\"a.wav\"\r\nContent-Type: audio/wav\r\n\r\n"
	    "RIFF\r\n--X\r\n--XyZ\r\n"
	    "Content-Disposition: form-data; name=\"model\"\r\n\r\n"
	    "whisper:small\r\n--XyZ--\r\n", "whisper:small");
	check("preamble, quoted boundary, token name",
	    "Multipart/Form-Data ; boundary=\"XyZ\"",
	    "ignored\r\n--XyZ\r\ncontent-disposition: form-data; name=model"
	    "\r\n\r\nm1\r\n--XyZ--", "m1");
	check("an empty model is read as empty", CT,
	    "--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n"
	    "\r\n--XyZ--\r\n", "");
	check("no model field", CT,
	    "--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n"
	    "x\r\n--XyZ--\r\n", NULL);
	check("two model fields", CT,
	    "--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n"
	    "a\r\n--XyZ\r\nContent-Disposition: form-data; name=\"model\""
	    "\r\n\r\nb\r\n--XyZ--\r\n", NULL);
	check("not a form", "application/json", "{\"model\":\"a\"}", NULL);
	check("no boundary", "multipart/form-data", "--\r\n", NULL);
	check("two boundaries", CT "; boundary=Q",
	    "--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n"
	    "a\r\n--XyZ--\r\n", NULL);
	check("unterminated", CT,
	    "--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n"
	    "a", NULL);
	check("RFC 2231 name", CT,
	    "--XyZ\r\nContent-Disposition: form-data; name*=utf-8''model"
	    "\r\n\r\na\r\n--XyZ--\r\n", NULL);
	check("escaped quoted name", CT,
	    "--XyZ\r\nContent-Disposition: form-data; name=\"mod\\el\"\r\n\r\n"
	    "a\r\n--XyZ--\r\n", NULL);
	check("model as a file", CT,
	    "--XyZ\r\nContent-Disposition: form-data; name=\"model\"; "
	    "filename=\"m\"\r\n\r\na\r\n--XyZ--\r\n", NULL);
	check("quoted-printable model", CT,
	    "--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
	    "a=3Db\r\n--XyZ--\r\n", NULL);
	check("folded header", CT,
	    "--XyZ\r\nContent-Disposition: form-data;\r\n name=\"model\""
	    "\r\n\r\na\r\n--XyZ--\r\n", NULL);
	check("bare line feeds", CT,
	    "--XyZ\nContent-Disposition: form-data; name=\"model\"\n\n"
	    "a\n--XyZ--\n", NULL);
	check("space after a boundary", CT,
	    "--XyZ \r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n"
	    "a\r\n--XyZ--\r\n", NULL);
	check("a boundary look-alike inside a part", CT,
	    "--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n"
	    "a\r\n--XyZW\r\n--XyZ--\r\n", NULL);
	check("not form-data", CT,
	    "--XyZ\r\nContent-Disposition: attachment; name=\"model\"\r\n\r\n"
	    "a\r\n--XyZ--\r\n", NULL);
	check("model too long", CT,
	    "--XyZ\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\n"
	    "0123456789012345678901234567890123456789012345678901234567890123"
	    "456789\r\n--XyZ--\r\n", NULL);
	check("empty quoted boundary", "multipart/form-data; boundary=\"\"",
	    "--\r\n\r\n", NULL);
	return tap_done();
}
