from django.urls import path

from appeals import portal

app_name = "portal"
urlpatterns = [
    path("", portal.home, name="home"),
    path("sign-in/", portal.sign_in, name="sign-in"),
    path("sign-out/", portal.sign_out, name="sign-out"),
    path("appeal/", portal.appeal, name="appeal"),
    path("appeal/withdraw/", portal.withdraw, name="withdraw"),
    path("receipt/", portal.receipt_download, name="receipt"),
]
