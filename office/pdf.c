/*
 * pdf.c -- guichet-office's printed pages (libharu, as the invoices of
 * backend/invoice.c): A4, the base-14 Helvetica in WinAnsi (UTF-8
 * through gchb_cp1252), made in memory and answered as application/pdf.
 * Used by the daily lists (daily.c) and the letters for overdue invoices
 * (counter.c).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "office.h"


static void
gcho_pdf_error(HPDF_STATUS error_no, HPDF_STATUS detail_no, void *data)
{
    gcho_pdf_t  *d = data;

    gchb_log("error", "libharu: error 0x%04x (detail %u)",
             (unsigned) error_no, (unsigned) detail_no);
    d->failed = 1;
}


/* See office.h. */
int
gcho_pdf_open(gcho_pdf_t *d)
{
    memset(d, 0, sizeof(*d));

    d->pdf = HPDF_New(gcho_pdf_error, d);
    if (d->pdf == NULL) {
        return -1;
    }

    HPDF_SetCompressionMode(d->pdf, HPDF_COMP_ALL);
    d->font = HPDF_GetFont(d->pdf, "Helvetica", "WinAnsiEncoding");
    d->bold = HPDF_GetFont(d->pdf, "Helvetica-Bold", "WinAnsiEncoding");

    return d->failed ? -1 : 0;
}


/* See office.h. */
void
gcho_pdf_page(gcho_pdf_t *d)
{
    d->page = HPDF_AddPage(d->pdf);
    HPDF_Page_SetSize(d->page, HPDF_PAGE_SIZE_A4, HPDF_PAGE_PORTRAIT);
    d->y = HPDF_Page_GetHeight(d->page) - 50;
}


/* See office.h. */
void
gcho_pdf_text(gcho_pdf_t *d, HPDF_Font font, float size, float x,
    float width, const char *utf8)
{
    char    buf[512];
    size_t  n;

    gchb_cp1252(buf, sizeof(buf), utf8);

    HPDF_Page_SetFontAndSize(d->page, font, size);
    n = strlen(buf);
    while (n > 1 && HPDF_Page_TextWidth(d->page, buf) > width) {
        buf[--n] = '\0';
        if (n > 3) {
            memcpy(buf + n - 3, "...", 3);
        }
    }

    HPDF_Page_BeginText(d->page);
    HPDF_Page_TextOut(d->page, x, d->y, buf);
    HPDF_Page_EndText(d->page);
}


/* See office.h. */
void
gcho_pdf_rule(gcho_pdf_t *d)
{
    HPDF_Page_SetLineWidth(d->page, 0.5);
    HPDF_Page_MoveTo(d->page, 40, d->y - 4);
    HPDF_Page_LineTo(d->page, 555, d->y - 4);
    HPDF_Page_Stroke(d->page);
}


/* See office.h. */
int
gcho_pdf_reply(gcho_req_t *rq, gcho_pdf_t *d, const char *filename)
{
    int          rc;
    char        *bytes, disp[160];
    HPDF_UINT32  size;
    HPDF_STATUS  st;

    rc = -1;

    if (!d->failed && HPDF_SaveToStream(d->pdf) == HPDF_OK) {
        size = HPDF_GetStreamSize(d->pdf);
        bytes = malloc(size ? size : 1);
        st = bytes ? HPDF_ReadFromStream(d->pdf, (HPDF_BYTE *) bytes, &size)
                   : HPDF_FAILD_TO_ALLOC_MEM;
        if ((st == HPDF_OK || st == HPDF_STREAM_EOF) && !d->failed) {
            snprintf(disp, sizeof(disp), "inline; filename=\"%s\"",
                     filename);
            gcho_add_header(rq, "Content-Disposition", disp);
            rc = gcho_reply_bytes(rq, 200, "application/pdf", bytes, size);
        }
        free(bytes);
    }

    HPDF_Free(d->pdf);
    d->pdf = NULL;

    if (rc != 0) {
        return gcho_error(rq, 500, "internal",
                          "Une erreur interne est survenue.");
    }

    return 0;
}
