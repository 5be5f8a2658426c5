from ratios import aspect_ratio, gcd, lcm, reduce


def test_gcd():
    assert gcd(48, 18) == 6
    assert gcd(17, 5) == 1


def test_gcd_with_zero():
    assert gcd(0, 9) == 9
    assert gcd(9, 0) == 9


def test_gcd_is_never_negative():
    assert gcd(-12, 8) == 4


def test_lcm():
    assert lcm(4, 6) == 12
    assert lcm(0, 5) == 0


def test_reduce_puts_the_sign_on_the_numerator():
    assert reduce(3, -6) == (-1, 2)
    assert reduce(-6, -8) == (3, 4)


def test_aspect_ratio():
    assert aspect_ratio(1920, 1080) == "16:9"
